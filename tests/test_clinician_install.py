"""The clinician's install is real: a new venv, `pip install <project>[app]` and nothing else.

The project is copied and installed as a package (not editable), in a venv that does not see
the system's or the test venv's packages. In it `trus segment` and the app's screenshot mode
work on a frame with a tiny ONNX model, and torch, dvc and pandas are not importable. Then the
data person's `[ingest]` extra is added: `trus ingest` reads an export, still without torch.

Slow (pip downloads, about a minute with a warm pip cache); CI runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.imaging.masks import read_bitmask, unpack_masks
from tests.conftest import child_environment, copy_project
from tests.tiny_models import write_threshold_model

pytestmark = pytest.mark.slow

NOT_INSTALLED = ("torch", "dvc", "pandas", "segmentation_models_pytorch", "roboflow")


def run(command: list[str], cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    """Runs ``command`` (outside the project folder, so nothing is imported from a source tree)."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env=child_environment({"QT_QPA_PLATFORM": "offscreen", **env}))
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def cannot_import(python: Path, module: str, cwd: Path) -> bool:
    result = subprocess.run([str(python), "-c", f"import {module}"], cwd=cwd, capture_output=True, text=True,
                            timeout=60, env=child_environment())
    return result.returncode == 1 and f"No module named '{module}'" in result.stderr


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``venv/`` with ``<copy of the project>[app]`` installed."""
    root = tmp_path_factory.mktemp("clinic")
    source = copy_project(root / "trus-seg")
    run([sys.executable, "-m", "venv", str(root / "venv")], root)
    run([str(root / "venv/bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"{source}[app]"], root, timeout=1800)
    return root


def test_the_app_install_is_isolated_and_torch_free(clinic: Path):
    config = (clinic / "venv/pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in config
    python = clinic / "venv/bin/python"
    location = run([str(python), "-c", "import pipeline, app; print(pipeline.__file__, app.__file__)"], clinic).stdout
    assert location.count(str(clinic / "venv/lib")) == 2  # the installed package, not a source tree
    assert [module for module in NOT_INSTALLED if not cannot_import(python, module, clinic)] == []


def test_trus_segment_in_the_app_install(clinic: Path):
    frame = np.zeros((120, 160), np.uint8)
    frame[30:90, 40:120] = 220  # 60 x 80 = 4800 bright pixels
    cv2.imwrite(str(clinic / "frame.png"), frame)
    model = write_threshold_model(clinic / "model.onnx")
    result = run([str(clinic / "venv/bin/trus"), "segment", "frame.png", "--model", str(model), "--out", "seg"], clinic)
    assert "1 frame(s) -> seg" in result.stderr + result.stdout
    masks = unpack_masks(read_bitmask(clinic / "seg/frame_mask.png"), 2)
    assert masks.shape == (2, 120, 160)
    assert abs(int(masks[0].sum()) - 4800) <= 240 and masks[0, 60, 80] and not masks[0, 5, 5]
    assert masks[1, 5, 5] and not masks[1, 60, 80]
    assert cv2.imread(str(clinic / "seg/frame_overlay.png")).shape == (120, 160, 3)
    areas = (clinic / "seg/areas.csv").read_text().splitlines()
    assert areas[0] == ("file,frame,output,width,height,class,area_px,area_mm2,spacing_x_mm,spacing_y_mm,"
                        "spacing_source,plane,plane_probability,review,review_reason")
    assert len(areas) == 3
    assert all(row.split(",")[-4:-2] == ["", ""] for row in areas[1:])  # this model has no plane head
    assert all(row.split(",")[-2:] == ["no", ""] for row in areas[1:])  # one whole, sharp gland: no review


def test_app_screenshot_in_the_app_install(clinic: Path):
    frame = np.zeros((120, 160), np.uint8)
    frame[30:90, 40:120] = 220
    cv2.imwrite(str(clinic / "shot_frame.png"), frame)
    model = write_threshold_model(clinic / "app_model.onnx")
    result = run([str(clinic / "venv/bin/python"), "-m", "app", "shot_frame.png", "--model", str(model),
                  "--screenshot", "shot.png"], clinic, XDG_STATE_HOME=str(clinic / "state"))
    assert "shot.png" in result.stdout
    shot = cv2.imread(str(clinic / "shot.png"))
    assert shot.shape == (800, 1280, 3) and len(np.unique(shot.reshape(-1, 3), axis=0)) > 10
    assert list((clinic / "state").rglob("*.log"))  # the app's own log file, in the user's log folder


@pytest.mark.parametrize("command", [["ingest", "nowhere", "--out", "x"], ["frames", "nowhere", "--out", "x"],
                                     ["upload", "frames", "--workspace", "w", "--project", "p"]])
def test_data_commands_name_the_extra_they_need(clinic: Path, command: list[str]):
    """Runs before the ingest extra is added (tests run in file order): one line, no traceback."""
    (clinic / "frames").mkdir(exist_ok=True)
    cv2.imwrite(str(clinic / "frames" / "a.png"), np.zeros((8, 8), np.uint8))
    result = subprocess.run([str(clinic / "venv/bin/trus"), *command], cwd=clinic, capture_output=True, text=True,
                            timeout=120, env=child_environment({"TRUS_PSEUDONYM_KEY": "k" * 32,
                                                                "ROBOFLOW_API_KEY": "rf_test_key_not_real"}))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "install the 'ingest' extra: pip install 'trus-seg[ingest]'" in errors[0]


def test_the_ingest_extra_adds_trus_ingest_without_torch(clinic: Path):
    python = clinic / "venv/bin/python"
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{clinic / 'trus-seg'}[ingest]"],
        clinic, timeout=1800)
    trus = str(clinic / "venv/bin/trus")
    run([trus, "sample", "--out", "export", "--seed", "1", "--patients", "2", "--frames-per-patient", "2"], clinic)
    result = run([trus, "ingest", "export", "--out", "ingested"], clinic)
    assert "4 frames of 2 patients" in result.stderr + result.stdout
    assert len((clinic / "ingested/manifest.csv").read_text().splitlines()) == 5
    assert json.loads((clinic / "ingested.qc.json").read_text())["counts"] == {}
    assert [module for module in ("torch", "dvc", "segmentation_models_pytorch") if
            not cannot_import(python, module, clinic)] == []


def test_the_serve_extra_adds_trus_serve_without_torch(clinic: Path):
    """Without the extra, `trus serve` names it; with it, the installed package serves its gallery and segments."""
    trus, python = str(clinic / "venv/bin/trus"), clinic / "venv/bin/python"
    model = write_threshold_model(clinic / "serve_model.onnx")
    missing = subprocess.run([trus, "serve", "--model", str(model)], cwd=clinic, capture_output=True, text=True,
                             timeout=120, env=child_environment())
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr
    assert "install the 'serve' extra: pip install 'trus-seg[serve]'" in missing.stderr
    run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{clinic / 'trus-seg'}[serve]"],
        clinic, timeout=1800)
    frame = np.zeros((120, 160), np.uint8)
    frame[30:90, 40:120] = 220
    cv2.imwrite(str(clinic / "serve_frame.png"), frame)
    script = (  # the standard library's HTTP client: this venv need not have requests
        "import json, socket, sys, threading, time, urllib.request, uvicorn\n"
        "from pipeline.inference.predictor import Segmenter\n"
        "from pipeline.serve.service import ServeConfig, create_app\n"
        "sock = socket.socket(); sock.bind(('127.0.0.1', 0)); port = sock.getsockname()[1]\n"
        f"server = uvicorn.Server(uvicorn.Config(create_app(ServeConfig(Segmenter({str(model)!r}))), log_level='warning'))\n"
        "threading.Thread(target=server.run, kwargs={'sockets': [sock]}, daemon=True).start()\n"
        "while not server.started: time.sleep(0.05)\n"
        "url = f'http://127.0.0.1:{port}'\n"
        "page = urllib.request.urlopen(url + '/', timeout=10).read().decode()\n"
        "script = urllib.request.urlopen(url + '/static/gallery.js', timeout=10).status\n"
        "body = (b'--b\\r\\nContent-Disposition: form-data; name=\"files\"; filename=\"f.png\"\\r\\n'\n"
        "        b'Content-Type: image/png\\r\\n\\r\\n' + open('serve_frame.png', 'rb').read() + b'\\r\\n--b--\\r\\n')\n"
        "request = urllib.request.Request(url + '/v1/segment', data=body,\n"
        "                                 headers={'Content-Type': 'multipart/form-data; boundary=b'})\n"
        "reply = json.loads(urllib.request.urlopen(request, timeout=60).read())\n"
        "print('<title>TRUS segmentation gallery</title>' in page, script,\n"
        "      reply['files'][0]['frames'][0]['classes'][0]['area_px'], 'torch' in sys.modules)\n"
        "server.should_exit = True\n")
    shown = run([str(python), "-c", script], clinic).stdout.split()
    assert shown[:2] == ["True", "200"] and abs(int(shown[2]) - 4800) <= 240 and shown[3] == "False"
    # (pandas and roboflow may be there: the ingest extra's test runs before this one)
    assert [module for module in ("torch", "dvc", "segmentation_models_pytorch")
            if not cannot_import(python, module, clinic)] == []
