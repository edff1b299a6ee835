"""The real ``roboflow`` client over real HTTP against the fake Roboflow API on 127.0.0.1.

The client reads ``API_URL`` once, at import; ours runs in a child interpreter that imports it
with the environment of the call, so each test sets ``API_URL`` (monkeypatch) before calling.
Every wait is bounded: the downloads' own deadlines (small here), and the fake server stops at
teardown.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataParams, QcParams, RoboflowParams
from pipeline.ingest.roboflow.common import RoboflowError, RoboflowRef, api_key_from_env, parse_roboflow_source, scrub
from pipeline.ingest.roboflow.download import download_export
from pipeline.ingest.source import ingest, opened_export
from pipeline.ingest.roboflow.upload import upload_frames
from tests.fake_roboflow import FakeRoboflow, refused_url, small_export_zip

KEY = "rf_Live_k3yS3cretXyz"  # has lowercase letters: the client treats all-caps keys as placeholders
REF = RoboflowRef("hospital-urology", "prostate-trus", 1)
FORMAT = "coco-segmentation"


@pytest.fixture(scope="module")
def export_zip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return small_export_zip(tmp_path_factory.mktemp("export"))


@pytest.fixture
def fake(export_zip: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The fake API, with ``API_URL`` and ``ROBOFLOW_API_KEY`` pointing at it; stopped at teardown."""
    with FakeRoboflow(KEY, {FORMAT: export_zip}) as server:
        monkeypatch.setenv("API_URL", server.url)
        monkeypatch.setenv("ROBOFLOW_API_KEY", KEY)
        monkeypatch.setenv("ROBOFLOW_CONFIG_DIR", str(tmp_path / "no-roboflow-config.json"))  # no user login
        yield server


def assert_key_never_leaked(fake: FakeRoboflow, capfd: pytest.CaptureFixture, root: Path, key: str = KEY) -> None:
    """The key is only ever the ``api_key`` query value: not in output, files, paths or other fields."""
    out, err = capfd.readouterr()
    assert key not in out and key not in err
    for path in root.rglob("*"):
        assert key not in str(path)
        assert not path.is_file() or key.encode() not in path.read_bytes()
    for request in fake.requests:
        assert key not in request.path and key.encode() not in request.body
        assert all(key not in value for name, values in request.query.items() if name != "api_key"
                   for value in values)
        assert not request.path.startswith("/files/") or "api_key" not in request.query


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_download_polls_through_generating_and_equals_the_zip(fake, export_zip, tmp_path, capfd):
    fake.generating_polls = 2
    destination = download_export(REF, FORMAT, tmp_path / "api" / "export", timeout_s=30)
    assert destination == tmp_path / "api" / "export"
    assert fake.export_requests == 4  # 202, 202, 200 (export() polling), 200 (download() asks for the link)
    assert [p.name for p in destination.parent.iterdir()] == ["export"]  # no partial folder left
    local_zip = tmp_path / "local.zip"
    local_zip.write_bytes(export_zip)
    with opened_export(local_zip) as unpacked:
        assert tree(destination) == tree(unpacked)


def test_pull_from_the_api_equals_pull_from_the_zip(fake, export_zip, tmp_path, capfd):
    """The shared ingest (pull stage, trus ingest): same frames, masks, manifest and dataset version."""
    fake.generating_polls = 1
    local_zip = tmp_path / "local.zip"
    local_zip.write_bytes(export_zip)
    roboflow = RoboflowParams(REF.workspace, REF.project, REF.version, timeout_s=30)
    sources = {"api": DataParams(source="roboflow", roboflow=roboflow), "zip": DataParams(export_dir=str(local_zip))}
    results = {name: ingest(data, QcParams(), tmp_path / name, tmp_path / f"{name}-qc.json", progress=False)
               for name, data in sources.items()}
    pd.testing.assert_frame_equal(results["api"].manifest, results["zip"].manifest)
    assert len(results["api"].manifest) == 6
    trees = {name: tree(tmp_path / name) for name in sources}
    origins = {name: json.loads(trees[name].pop("source.json"))["origin"] for name in sources}
    assert trees["api"] == trees["zip"] and len(trees["api"]) == 2 * 6 + 1  # images, masks, manifest
    assert origins == {"api": "roboflow:hospital-urology/prostate-trus/1", "zip": f"local:{local_zip}"}
    versions = {json.loads((tmp_path / name / "source.json").read_text())["dataset_version"] for name in sources}
    assert len(versions) == 1
    assert (tmp_path / "api-qc.json").read_bytes() == (tmp_path / "zip-qc.json").read_bytes()
    assert not list(tmp_path.glob("trus-roboflow-*")) and not list(tmp_path.glob(".*partial*"))
    assert_key_never_leaked(fake, capfd, tmp_path)


@pytest.mark.parametrize("case, expected", [
    ("bad key", "Roboflow rejected the API key (HTTP 401); check ROBOFLOW_API_KEY"),
    ("unknown workspace", "Roboflow workspace 'nobody' not found (HTTP 404)"),
    ("unknown project", "Roboflow project 'hospital-urology/nothing' not found (HTTP 404)"),
    ("unknown version", "Roboflow version hospital-urology/prostate-trus/9 not found"),
    ("unknown format", "Roboflow cannot export roboflow:hospital-urology/prostate-trus/1 (yolov8) (HTTP 400): "
                       "Unsupported export format `yolov8`."),
    ("expired link", "the export link of roboflow:hospital-urology/prostate-trus/1 (coco-segmentation) answered "
                     "HTTP 403 (expired or unavailable); run again for a fresh link"),
    ("missing link", "answered HTTP 404 (expired or unavailable)"),
    ("failing link", "answered HTTP 500 (expired or unavailable)"),
    ("corrupt zip", "the export zip of roboflow:hospital-urology/prostate-trus/1 (coco-segmentation) is corrupt "
                    "(File is not a zip file); run again"),
    ("listed but not ready", "Roboflow export of roboflow:hospital-urology/prostate-trus/1 (coco-segmentation) is "
                             "not ready yet (HTTP 202); run again shortly"),
])
def test_each_failure_is_one_clear_line_and_leaves_nothing(fake, tmp_path, capfd, case, expected):
    ref, export_format, key = REF, FORMAT, KEY
    if case == "bad key":
        key = "rf_Wrong_k3yXyz"
    ref = RoboflowRef("nobody", REF.project, 1) if case == "unknown workspace" else ref
    ref = RoboflowRef(REF.workspace, "nothing", 1) if case == "unknown project" else ref
    ref = RoboflowRef(REF.workspace, REF.project, 9) if case == "unknown version" else ref
    export_format = "yolov8" if case == "unknown format" else export_format
    fake.link_status = {"expired link": 403, "missing link": 404, "failing link": 500}.get(case)
    fake.corrupt_zip = case == "corrupt zip"
    if case == "listed but not ready":
        fake.listed_exports, fake.generating_polls = [FORMAT], 1
    destination = tmp_path / "out" / "export"
    with pytest.raises(RoboflowError) as caught:
        download_export(ref, export_format, destination, timeout_s=20, api_key=key)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert key not in message and KEY not in message
    assert list((tmp_path / "out").iterdir()) == []  # neither the destination nor a partial folder
    assert_key_never_leaked(fake, capfd, tmp_path, key)


def test_export_generating_forever_hits_the_deadline(fake, tmp_path, capfd):
    fake.generating_polls = None
    started = time.monotonic()
    with pytest.raises(RoboflowError, match=r"Roboflow export of .* still generating after 4 s"):
        download_export(REF, FORMAT, tmp_path / "out" / "export", timeout_s=4)
    assert 4 <= time.monotonic() - started < 8
    assert fake.export_requests >= 1 and list((tmp_path / "out").iterdir()) == []
    assert_key_never_leaked(fake, capfd, tmp_path)


def test_version_generating_forever_hits_the_deadline(fake, tmp_path):
    fake.version_generating = True  # the client sleeps 5 s between its checks, forever
    started = time.monotonic()
    with pytest.raises(RoboflowError, match=r"Roboflow version \(0 images\) of .* still generating after 4 s"):
        download_export(REF, FORMAT, tmp_path / "out" / "export", timeout_s=4)
    assert time.monotonic() - started < 8 and fake.export_requests == 0


def test_roboflow_unreachable(monkeypatch, tmp_path, capfd):
    url = refused_url()
    monkeypatch.setenv("API_URL", url)
    with pytest.raises(RoboflowError) as caught:
        download_export(REF, FORMAT, tmp_path / "out" / "export", timeout_s=20, api_key=KEY)
    assert str(caught.value) == f"cannot reach Roboflow at {url} (connection refused or offline); " \
                                "check the network/API_URL"
    assert list((tmp_path / "out").iterdir()) == []
    out, err = capfd.readouterr()
    assert KEY not in out + err


def test_api_url_of_the_call_wins_even_after_roboflow_was_imported_here(fake, monkeypatch, tmp_path):
    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # roboflow replaces it on import
    monkeypatch.setenv("API_URL", refused_url())
    before = {m for m in sys.modules if m == "roboflow" or m.startswith("roboflow.")}
    for name in before:
        monkeypatch.delitem(sys.modules, name)  # restored at teardown
    try:
        import roboflow.config  # this process's client now holds the refused URL
        assert roboflow.config.API_URL != fake.url
        monkeypatch.setenv("API_URL", fake.url)
        assert download_export(REF, FORMAT, tmp_path / "export", timeout_s=20).is_dir()
    finally:
        for name in [m for m in sys.modules if m == "roboflow" or m.startswith("roboflow.")]:
            del sys.modules[name]


def test_existing_destination_is_refused_before_any_request(fake, tmp_path):
    (tmp_path / "export").mkdir()
    with pytest.raises(RoboflowError, match="already exists"):
        download_export(REF, FORMAT, tmp_path / "export", timeout_s=20)
    assert fake.requests == []


@pytest.mark.parametrize("text, expected", [
    ("roboflow:hospital-urology/prostate-trus/3", RoboflowRef("hospital-urology", "prostate-trus", 3)),
    ("  roboflow:ws_1/proj.v2/12 ", RoboflowRef("ws_1", "proj.v2", 12)),
    ("roboflow:hospital-urology/prostate-trus", None),
    ("roboflow:hospital-urology/prostate-trus/v3", None),
    ("roboflow:hospital-urology/prostate-trus/0", None),
    ("roboflow:/prostate-trus/1", None),
    ("roboflow:a/b/c/1", None),
    ("hospital-urology/prostate-trus/1", None),
    ("https://app.roboflow.com/hospital-urology/prostate-trus/1", None),
    ("", None),
])
def test_parse_roboflow_source(text, expected):
    if expected is None:
        with pytest.raises(ValueError, match="roboflow:WORKSPACE/PROJECT/VERSION|not a Roboflow dataset version"):
            parse_roboflow_source(text)
    else:
        assert parse_roboflow_source(text) == expected
        assert str(expected) == text.strip()


def test_api_key_only_from_the_environment(monkeypatch):
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    with pytest.raises(RoboflowError, match="ROBOFLOW_API_KEY is not set"):
        api_key_from_env()
    with pytest.raises(RoboflowError, match="ROBOFLOW_API_KEY is not set"):
        download_export(REF, FORMAT, Path("never-created"), timeout_s=1)
    monkeypatch.setenv("ROBOFLOW_API_KEY", "  ")
    with pytest.raises(RoboflowError, match="ROBOFLOW_API_KEY is not set"):
        api_key_from_env()
    monkeypatch.setenv("ROBOFLOW_API_KEY", KEY)
    assert api_key_from_env() == KEY


def test_scrub_hides_the_key_in_every_form():
    text = f"GET http://x/ws?api_key={KEY}&nocache=true failed; key {KEY}; other api_key=abc%2Fdef end"
    assert scrub(text, KEY) == "GET http://x/ws?api_key=***&nocache=true failed; key ***; other api_key=*** end"


def write_frames(folder: Path) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = [folder / "P001_F01.png", folder / "P001_F02.png", folder / "P002_F01.jpg"]
    for path in paths:
        assert cv2.imwrite(str(path), rng.integers(0, 255, (48, 64), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return paths


def test_upload_sends_every_frame(fake, tmp_path, capfd):
    paths = write_frames(tmp_path / "frames")
    assert upload_frames(tmp_path / "frames", REF.workspace, REF.project, timeout_s=20, batch_name="deid-2024") == 3
    assert [u["name"] for u in fake.uploads] == [p.name for p in paths]
    assert [u["file"] for u in fake.uploads] == [p.read_bytes() for p in paths]
    assert {u["batch"] for u in fake.uploads} == {"deid-2024"} and {u["split"] for u in fake.uploads} == {"train"}
    assert_key_never_leaked(fake, capfd, tmp_path)


@pytest.mark.parametrize("case, expected", [
    ("bad key", "Roboflow rejected the API key (HTTP 401); check ROBOFLOW_API_KEY"),
    ("unknown project", "Roboflow project 'hospital-urology/nothing' not found (HTTP 404)"),
    ("server error", "Roboflow refused P002_F01.jpg (HTTP 500): Internal error while storing the image. "
                     "(2 of 3 images were uploaded before)"),
])
def test_upload_failures(fake, tmp_path, capfd, case, expected):
    write_frames(tmp_path / "frames")
    key, project = ("rf_Wrong_k3yXyz", REF.project) if case == "bad key" else (KEY, "nothing")
    if case == "server error":
        project, fake.fail_uploads_after = REF.project, 2
    with pytest.raises(RoboflowError) as caught:
        upload_frames(tmp_path / "frames", REF.workspace, project, timeout_s=20, api_key=key)
    assert str(caught.value) == expected and len(fake.uploads) == (2 if case == "server error" else 0)
    assert_key_never_leaked(fake, capfd, tmp_path, key)


def test_upload_needs_images(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOFLOW_API_KEY", KEY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(RoboflowError, match="no PNG/JPEG images"):
        upload_frames(tmp_path / "empty", REF.workspace, REF.project, timeout_s=5)
    with pytest.raises(RoboflowError, match="no such folder"):
        upload_frames(tmp_path / "missing", REF.workspace, REF.project, timeout_s=5)
