"""`trus serve` (pipeline/serve): every endpoint through a real uvicorn on 127.0.0.1 with a real HTTP client
(requests), the limits and their statuses, the token, nothing left on disk or in the logs, and the parity of its
masks with `trus segment`'s files. On the tests' tiny threshold model (tests/tiny_models.py)."""

from __future__ import annotations

import base64
import io
import logging
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from typer.testing import CliRunner

from pipeline.cli.main import app as cli
from pipeline.imaging.masks import read_bitmask, unpack_masks
from pipeline.imaging.polygons import rasterise_polygon
from pipeline.inference.predictor import Segmenter
from pipeline.serve.limits import MB, ServeLimits
from pipeline.serve.service import ServeConfig
from pipeline.serve.uploads import sniff_kind
from tests.conftest import PROJECT_ROOT, child_environment
from tests.serve_fixtures import RunningService, running_service
from tests.test_segment_pipeline import CINE_FRAMES, write_frames
from tests.tiny_models import write_threshold_model

TOKEN = "s3cret-token-for-tests"
PATIENT_NAME = "DOE^JANE"
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n" + b"not really a png"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny threshold model: 'gland' = brighter than mid-grey, on a 32 px grid."""
    return write_threshold_model(tmp_path_factory.mktemp("model") / "m.onnx")


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Frame files by name: ``a`` (PNG), ``b`` (BMP), ``broken`` (not even a PNG signature), ``cine`` (3-frame DICOM, 0.2 mm/px,
    with a patient name), ``scan`` (a phantom with a depth scale)."""
    paths = write_frames(tmp_path_factory.mktemp("frames") / "in", ["a", "b", "broken", "cine", "scan"])
    cine = pydicom.dcmread(paths[3])
    cine.PatientName = PATIENT_NAME
    cine.save_as(paths[3])
    return {path.stem: path for path in paths}


@pytest.fixture(scope="module")
def service(model: Path) -> Iterator[RunningService]:
    """The open service (no token) with small limits: 2 MiB per request, 3 files, a queue of 4."""
    limits = ServeLimits(max_upload_mb=2, max_files=3, queue=4, workers=2)
    with running_service(ServeConfig(Segmenter(model), limits)) as running:
        yield running


def post(service: RunningService, paths: list[Path], timeout: float = 60, **params: object) -> requests.Response:
    """POST /v1/segment with the files (multipart field ``files``, their own names)."""
    files = [("files", (path.name, path.read_bytes())) for path in paths]
    return requests.post(f"{service.url}/v1/segment", files=files, params=params, timeout=timeout)


def segmented_by_cli(model: Path, paths: list[Path], out: Path) -> Path:
    """Runs the real `trus segment` on the files; returns its output folder."""
    result = CliRunner().invoke(cli, ["segment", *map(str, paths), "--model", str(model), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_healthz_and_the_model_card(service: RunningService, model: Path):
    health = requests.get(f"{service.url}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["queue_limit"] == 4 and health["queued"] == 0
    card = requests.get(f"{service.url}/v1/model", timeout=10).json()
    assert card["file"] == "m.onnx" and card["precision"] == "fp32" and card["version"] == card["sha256"][:12]
    assert card["contract"]["classes"] == ["gland", "lesion"] and card["contract"]["threshold"] == 0.5
    assert {"preprocess", "metrics", "dataset_version", "code_version"} <= set(card["contract"])
    assert health["model"] == {key: card[key] for key in ("name", "version", "precision")}
    docs = requests.get(f"{service.url}/openapi.json", timeout=10).json()
    assert {"/healthz", "/v1/model", "/v1/segment"} <= set(docs["paths"])
    assert requests.get(f"{service.url}/docs", timeout=10).status_code == 200


def test_segment_json_matches_trus_segment_and_its_outlines_give_the_mask_back(
        service: RunningService, model: Path, frames: dict[str, Path], tmp_path: Path):
    paths = [frames["a"], frames["scan"], frames["cine"]]
    response = post(service, paths)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["name"] == "tiny-threshold/none"
    assert [(item["file"], item["kind"], len(item["frames"])) for item in body["files"]] == [
        ("a.png", "png", 1), ("scan.png", "png", 1), ("cine.dcm", "dicom", CINE_FRAMES)]
    out = segmented_by_cli(model, paths, tmp_path / "cli")
    rows = (out / "areas.csv").read_text().splitlines()[1:]
    cli_areas = {(row.split(",")[2], row.split(",")[5]): row.split(",")[6:11] for row in rows}
    for item in body["files"]:
        for frame in item["frames"]:
            stem = Path(item["file"]).stem + (f"_f{frame['frame']:03d}" if len(item["frames"]) > 1 else "")
            masks = unpack_masks(read_bitmask(out / f"{stem}_mask.png"), 2)
            assert (frame["height"], frame["width"]) == masks.shape[1:]
            for index, entry in enumerate(frame["classes"]):
                area_px, area_mm2, x_mm, _, source = cli_areas[(stem, entry["name"])]
                assert entry["area_px"] == int(area_px) == masks[index].sum()
                assert frame["spacing"]["source"] == source
                assert (entry["area_mm2"] is None) == (area_mm2 == "")
                if area_mm2:
                    assert entry["area_mm2"] == pytest.approx(float(area_mm2), abs=1e-3)
                    assert frame["spacing"]["x_mm"] == pytest.approx(float(x_mm), abs=1e-6)
                drawn = np.zeros(masks.shape[1:], bool)
                for part in entry["parts"]:
                    holes = rasterise_polygon([np.array(hole) for hole in part["holes"]], masks.shape[1:]) \
                        if part["holes"] else np.zeros(masks.shape[1:], bool)
                    drawn |= rasterise_polygon([np.array(part["outline"])], masks.shape[1:]) & ~holes
                np.testing.assert_array_equal(drawn, masks[index])
            assert frame["review"]["flag"] == (frame["review"]["reason"] is not None)
    sources = [frame["spacing"]["source"] for item in body["files"] for frame in item["frames"]]
    assert sources == ["none", "depth_scale", "dicom", "dicom", "dicom"]
    assert body["files"][0]["frames"][0]["classes"][0]["area_px"] > 0


@pytest.mark.parametrize("name, frame, output", [("a", 0, "mask"), ("b", 0, "overlay"), ("scan", 0, "mask"),
                                                 ("cine", 2, "mask"), ("cine", 1, "overlay")])
def test_png_outputs_are_byte_identical_to_trus_segment_files(
        service: RunningService, model: Path, frames: dict[str, Path], tmp_path: Path, name: str, frame: int,
        output: str):
    response = post(service, [frames[name]], output=output, frame=frame)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    out = segmented_by_cli(model, [frames[name]], tmp_path / "cli")
    stem = name if name != "cine" else f"cine_f{frame:03d}"
    assert response.content == (out / f"{stem}_{output}.png").read_bytes()


def test_embedded_images_are_the_same_pngs(service: RunningService, frames: dict[str, Path]):
    embedded = post(service, [frames["a"]], images="true").json()["files"][0]["frames"][0]
    for output in ("mask", "overlay"):
        prefix = "data:image/png;base64,"
        assert embedded[f"{output}_png"].startswith(prefix)
        assert base64.b64decode(embedded[f"{output}_png"][len(prefix):]) == post(service, [frames["a"]],
                                                                                 output=output).content


def oversized_png(size_mb: float) -> bytes:
    """A PNG signature followed by ``size_mb`` MiB of padding (refused before it is decoded)."""
    return b"\x89PNG\r\n\x1a\n" + bytes(int(size_mb * MB))


@pytest.mark.parametrize("case, status, detail", [
    ("text named .png", 415, "notes.png: not a PNG, JPEG, BMP, TIFF or DICOM file (judged by its content"),
    ("empty file", 415, "empty.png: empty file"),
    ("corrupt png", 422, "broken.png: not a readable image"),
    ("truncated png", 422, "cut.png: not a readable image"),
    ("mask of two files", 422, "output=mask returns one frame's PNG; send one file, not 2"),
    ("frame past the end", 422, "cine.dcm: frame 3 requested, the file has 3"),
    ("four files", 413, "4 files in one request; the limit is 3"),
    ("body over 2 MiB", 413, "larger than the service's limit of 2 MiB"),
    ("negative frame", 422, "query frame: Input should be greater than or equal to 0"),
    ("no files", 422, "body files: Field required"),
    ("output unknown", 422, "query output: Input should be 'json', 'mask' or 'overlay'"),
])
def test_errors_have_their_status_and_a_one_line_reason_naming_the_file(
        service: RunningService, frames: dict[str, Path], case: str, status: int, detail: str):
    a = ("files", ("a.png", frames["a"].read_bytes()))
    files, params = {
        "text named .png": ([("files", ("notes.png", b"just some text"))], {}),
        "empty file": ([("files", ("empty.png", b""))], {}),
        "corrupt png": ([a, ("files", ("broken.png", CORRUPT_PNG))], {}),
        "truncated png": ([("files", ("cut.png", frames["a"].read_bytes()[:60]))], {}),
        "mask of two files": ([a, a], {"output": "mask"}),
        "frame past the end": ([("files", ("cine.dcm", frames["cine"].read_bytes()))], {"output": "mask", "frame": 3}),
        "four files": ([a] * 4, {}),
        "body over 2 MiB": ([("files", ("big.png", oversized_png(2.5)))], {}),
        "negative frame": ([a], {"output": "mask", "frame": -1}),
        "no files": ([("other", ("a.png", frames["a"].read_bytes()))], {}),
        "output unknown": ([a], {"output": "jpeg"}),
    }[case]
    response = requests.post(f"{service.url}/v1/segment", files=files, params=params, timeout=60)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"] and "\n" not in response.json()["detail"]
    assert "trus-serve-" not in response.json()["detail"]  # never the temporary file's path


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives(service: RunningService):
    boundary = "trusboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode()

    def chunks() -> Iterator[bytes]:  # a generator body: requests sends it chunked, without a Content-Length
        yield head
        for _ in range(3):
            yield bytes(MB)

    response = requests.post(f"{service.url}/v1/segment", data=chunks(), timeout=60,
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413 and "2 MiB" in response.json()["detail"]


def test_a_full_queue_answers_503_with_retry_after(model: Path, frames: dict[str, Path]):
    with running_service(ServeConfig(Segmenter(model), ServeLimits(queue=1, workers=1))) as service:
        queue = service.app.state.queue
        results: list[requests.Response] = []
        with queue.network_lock:  # the first request is admitted and waits for the network
            first = threading.Thread(target=lambda: results.append(post(service, [frames["a"]])))
            first.start()
            deadline = time.monotonic() + 30
            while requests.get(f"{service.url}/healthz", timeout=10).json()["queued"] < 1:
                assert time.monotonic() < deadline, "the first request was never admitted"
                time.sleep(0.02)
            refused = post(service, [frames["a"]])
        first.join(timeout=60)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "2"
        assert "busy" in refused.json()["detail"]
        assert results[0].status_code == 200
        assert requests.get(f"{service.url}/healthz", timeout=10).json()["queued"] == 0


@pytest.mark.parametrize("path, method", [("/v1/model", "get"), ("/v1/segment", "post")])
def test_with_a_token_every_endpoint_but_healthz_needs_it(model: Path, frames: dict[str, Path], path: str,
                                                          method: str):
    with running_service(ServeConfig(Segmenter(model), token=TOKEN)) as service:
        send = getattr(requests, method)
        options = {"files": [("files", ("a.png", frames["a"].read_bytes()))]} if method == "post" else {}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}):
            refused = send(service.url + path, headers=headers, timeout=30, **options)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        allowed = send(service.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30, **options)
        assert allowed.status_code == 200
        assert requests.get(f"{service.url}/healthz", timeout=10).status_code == 200


def test_nothing_uploaded_stays_on_disk_and_no_name_or_patient_reaches_the_log(
        service: RunningService, frames: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the uploads' temporary files would go
    secret = tmp_path / "PATIENT-SMITH-1234.dcm"
    secret.write_bytes(frames["cine"].read_bytes())
    big = tmp_path / "SMITH-big.png"  # over the 1 MiB at which the form parser spools to a temporary file
    big.write_bytes(frames["scan"].read_bytes() + bytes(MB + 1000))
    with caplog.at_level(logging.DEBUG):
        assert post(service, [secret, big]).status_code == 200
        refused = requests.post(f"{service.url}/v1/segment", files=[("files", ("broken.png", CORRUPT_PNG))], timeout=30)
        assert refused.status_code == 422
    assert sorted(tmp_path.iterdir()) == sorted([secret, big])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "segment: 2 file(s)" in logged and "-> 422" in logged
    for secret_text in ("SMITH", PATIENT_NAME, "DOE", "broken.png"):
        assert secret_text not in logged


@pytest.mark.parametrize("data, kind", [
    (b"\x89PNG\r\n\x1a\n....", "png"), (b"\xff\xd8\xff\xe0", "jpeg"), (b"BM....", "bmp"), (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"), (bytes(128) + b"DICM", "dicom"), (b"GIF89a", None), (b"", None), (b"%PDF-1.7", None),
])
def test_the_type_is_judged_by_content(data: bytes, kind: str | None):
    assert sniff_kind(data) == kind


@pytest.mark.parametrize("options, message", [
    (["--model", "missing.onnx"], "missing.onnx: no such model file"),
    (["--max-files", "0"], "--max-files must be >= 1, got 0"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be > 0"),
    (["--tick-mm", "-1"], "--tick-mm must be a finite number > 0"),
    (["--threads", "0"], "Invalid value for '--threads'"),
])
def test_bad_serve_options_are_one_line_errors(model: Path, options: list[str], message: str):
    arguments = ["serve", *options] if options[0] == "--model" else ["serve", "--model", str(model), *options]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_embedded_mask_decodes_to_the_areas(service: RunningService, frames: dict[str, Path]):
    frame = post(service, [frames["b"]], images="true").json()["files"][0]["frames"][0]
    import cv2

    packed = cv2.imdecode(np.frombuffer(base64.b64decode(frame["mask_png"].split(",", 1)[1]), np.uint8),
                          cv2.IMREAD_UNCHANGED)
    masks = unpack_masks(packed, 2)
    assert [int(mask.sum()) for mask in masks] == [entry["area_px"] for entry in frame["classes"]]
    assert io.BytesIO(base64.b64decode(frame["overlay_png"].split(",", 1)[1])).read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_command_serves_until_interrupted_with_the_token_from_the_environment(model: Path, frames: dict[str, Path]):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "serve", "--model", str(model), "--port",
                               str(port), "--threads", "1"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=child_environment({"TRUS_API_TOKEN": TOKEN}))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "trus serve did not start"
            try:
                assert requests.get(f"{url}/healthz", timeout=2).json()["status"] == "ok"
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert requests.get(f"{url}/v1/model", timeout=10).status_code == 401
        card = requests.get(f"{url}/v1/model", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
        assert card["file"] == "m.onnx"
    finally:
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode == 0, stderr
    assert f"serve: m.onnx (fp32: no INT8 model beside it) on http://127.0.0.1:{port}/ (token required)" in stderr
    assert TOKEN not in stderr
