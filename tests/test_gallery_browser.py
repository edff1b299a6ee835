"""The gallery page in a real Chromium (Debian's, through Playwright): three frames picked at once, one of them
corrupt; each good one gets a card with its overlay decoded at the frame's size, its areas as the API reports them
and a mask download; the corrupt one's card shows the service's 422 reason and the others are unaffected."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import requests

from pipeline.inference.predictor import Segmenter
from pipeline.serve.service import ServeConfig
from tests.gallery_browser import upload_in_gallery
from tests.serve_fixtures import running_service
from tests.test_segment_pipeline import write_frames
from tests.tiny_models import write_threshold_model


@pytest.fixture
def frame_files(tmp_path: Path) -> list[Path]:
    """``a.png`` and ``scan.png`` (a phantom with a depth scale), and ``broken.png``: a PNG signature, then junk."""
    a, scan = write_frames(tmp_path / "in", ["a", "scan"])
    broken = tmp_path / "in" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    return [a, broken, scan]


@pytest.mark.parametrize("token", [None, "gallery-token"])
def test_three_frames_one_corrupt_in_a_real_browser(tmp_path: Path, frame_files: list[Path], token: str | None):
    model = write_threshold_model(tmp_path / "m.onnx")
    with running_service(ServeConfig(Segmenter(model), token=token)) as service:
        screenshot = tmp_path / "gallery.png"
        cards = upload_in_gallery(service.url, frame_files, screenshot, token=token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        expected = {path.name: requests.post(f"{service.url}/v1/segment", headers=headers, timeout=60,
                                             files=[("files", (path.name, path.read_bytes()))]).json()
                    for path in frame_files}
    assert [card.title for card in cards] == ["a.png", "broken.png", "scan.png"]
    by_name = {card.title: card for card in cards}
    broken = by_name["broken.png"]
    assert broken.error is not None and broken.error.startswith("422: broken.png: not a readable image")
    assert broken.overlays == [] and broken.rows == [] and broken.downloads == []
    for name in ("a.png", "scan.png"):
        card, frame = by_name[name], expected[name]["files"][0]["frames"][0]
        assert card.error is None
        assert card.overlays == [(frame["width"], frame["height"])]
        assert card.rows == [(entry["name"], f"{entry['area_px']:,}",
                              "–" if entry["area_mm2"] is None else f"{entry['area_mm2']:.1f}")
                             for entry in frame["classes"]]
        assert card.downloads == [f"{Path(name).stem}_mask.png"]
    assert by_name["scan.png"].rows[0][2] != "–"  # the depth scale gave mm²
    picture = cv2.imread(str(screenshot))
    assert picture is not None and picture.shape[1] == 1400 and picture.shape[0] >= 900
