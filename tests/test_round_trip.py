"""The raw-scan round trip through Roboflow, with the real CLI, the real client and the pull stage.

Scanner DICOMs (pydicom's real ultrasound examples, given a patient identity) ->
``trus frames`` -> ``trus upload`` to the fake Roboflow API -> "labelled" there (an export
built from exactly the uploaded bytes, named the way Roboflow names files) -> the pull stage
with ``data.source: roboflow`` and the frames manifest, and ``trus ingest`` on the same
version. Patient keys and pixel spacing survive; no identity, and never the API key,
reaches a file or the console.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from pydicom import dcmread, examples

from tests.fake_roboflow import FakeRoboflow, zip_folder
from tests.test_stages import PROJECT_ROOT, small_params

KEY = "rf_Live_r0undTripK3y"
SECRET = "hospital-secret-0123456789abcdef"
WORKSPACE, PROJECT = "hospital-urology", "prostate-trus"
IDENTITIES = {  # patient folder -> (example, identifying tags)
    "Doe^John": ("palette_color", {"PatientName": "Doe^John", "PatientID": "PID-4711", "PatientBirthDate": "19500101"}),
    "Roe^Jane": ("ybr_color", {"PatientName": "Roe^Jane", "PatientID": "PID-0815", "PatientBirthDate": "19600202"}),
}
IMAGE_SUFFIXES = (".png", ".jpg", ".zip")
IDENTIFYING = ["Doe", "Roe", "PID-4711", "PID-0815", "19500101", "19600202"]


def run_cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return run_module("pipeline.cli", args, cwd, **env)


def run_module(module: str, args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {"PYTHONPATH": str(PROJECT_ROOT), "PATH": os.environ["PATH"], "HOME": str(cwd),
                   "ROBOFLOW_CONFIG_DIR": str(cwd / "no-roboflow-config.json"), "COLUMNS": "200", **env}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          env=environment, timeout=300)


def labelled_export(uploads: list[dict], folder: Path) -> bytes:
    """A COCO Segmentation export of the uploaded frames, as Roboflow makes it: JPEG, renamed, category 0."""
    train = folder / "train"
    train.mkdir(parents=True)
    images, annotations = [], []
    for index, upload in enumerate(uploads):
        gray = cv2.imdecode(np.frombuffer(upload["file"], np.uint8), cv2.IMREAD_GRAYSCALE)
        stem = Path(upload["name"]).stem
        name = f"{stem}_png.rf.{hashlib.md5(upload['file']).hexdigest()}.jpg"
        cv2.imwrite(str(train / name), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        height, width = gray.shape
        x0, y0, x1, y1 = width // 4, height // 4, 3 * width // 4, 3 * height // 4
        images.append({"id": index, "file_name": name, "width": width, "height": height})
        annotations.append({"id": index, "image_id": index, "category_id": 1, "iscrowd": 0, "area": 1,
                            "bbox": [x0, y0, x1 - x0, y1 - y0], "segmentation": [[x0, y0, x1, y0, x1, y1, x0, y1]]})
    categories = [{"id": 0, "name": "prostate", "supercategory": "none"},
                  {"id": 1, "name": "gland", "supercategory": "prostate"}]
    (train / "_annotations.coco.json").write_text(json.dumps({"info": {}, "images": images,
                                                              "annotations": annotations, "categories": categories}))
    return zip_folder(folder)


def assert_nothing_identifying(root: Path, *outputs: str) -> None:
    secrets = [*IDENTIFYING, KEY]
    for text in outputs:
        assert not any(secret in text for secret in secrets), text
    for path in root.rglob("*"):
        if "raw" in path.relative_to(root).parts:
            continue
        assert not any(secret in str(path.relative_to(root)) for secret in secrets)
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:  # pixels only: no text chunks at all
            content = path.read_bytes()
            assert not any(chunk in content for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"Exif")), path
        elif path.is_file():  # short names could occur by chance in compressed pixels, not in text
            content = path.read_bytes()
            assert not any(secret.encode() in content for secret in secrets), path


@pytest.mark.slow
def test_scanner_to_roboflow_and_back_keeps_patients_and_spacing(tmp_path: Path):
    for folder, (example, tags) in IDENTITIES.items():
        dataset = dcmread(examples.get_path(example))
        for keyword, value in tags.items():
            setattr(dataset, keyword, value)
        (tmp_path / "raw" / folder).mkdir(parents=True)
        dataset.save_as(tmp_path / "raw" / folder / "scan.dcm", enforce_file_format=True)

    missing_secret = run_cli(["frames", "raw", "--out", "frames"], tmp_path)
    assert missing_secret.returncode != 0 and "TRUS_PSEUDONYM_KEY" in missing_secret.stderr
    made = run_cli(["frames", "raw", "--out", "frames"], tmp_path, TRUS_PSEUDONYM_KEY=SECRET)
    assert made.returncode == 0, made.stderr
    frames = pd.read_csv(tmp_path / "frames" / "manifest.csv")
    assert frames["patient"].nunique() == 2 and len(frames) >= 3
    assert frames[["spacing_x_mm", "spacing_y_mm"]].notna().all().all()

    with FakeRoboflow(KEY, {}, WORKSPACE, PROJECT) as fake:
        env = {"API_URL": fake.url, "ROBOFLOW_API_KEY": KEY}
        sent = run_cli(["upload", "frames", "--workspace", WORKSPACE, "--project", PROJECT], tmp_path, **env)
        assert sent.returncode == 0, sent.stderr
        assert sorted(upload["name"] for upload in fake.uploads) == sorted(frames["original_name"])
        fake.exports["coco-segmentation"] = labelled_export(fake.uploads, tmp_path / "labelled")

        project = tmp_path / "project"
        (project / "data").mkdir(parents=True)
        (project / "data" / "frames_manifest.csv").write_bytes((tmp_path / "frames" / "manifest.csv").read_bytes())
        params = small_params(data={"source": "roboflow", "format": "coco-segmentation", "classes": ["gland"],
                                    "frames_manifest": "data/frames_manifest.csv",
                                    "roboflow": {"workspace": WORKSPACE, "project": PROJECT, "version": 1,
                                                 "timeout_s": 60.0}})
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        pulled = run_module("pipeline.stages.pull", [], project, **env)
        assert pulled.returncode == 0, pulled.stderr
        checked = run_cli(["ingest", f"roboflow:{WORKSPACE}/{PROJECT}/1", "--out", "checked",
                           "--frames-manifest", "data/frames_manifest.csv"], project, **env)
        assert checked.returncode == 0, checked.stderr

    manifest = pd.read_csv(project / "artifacts" / "frames" / "manifest.csv")
    assert len(manifest) == len(frames)
    by_stem = frames.set_index(frames["original_name"].str.removesuffix(".png"))
    expected = by_stem.loc[manifest["original_name"].str.removesuffix(".png")]
    assert manifest["patient"].tolist() == expected["patient"].tolist()
    np.testing.assert_allclose(manifest[["spacing_x_mm", "spacing_y_mm"]].to_numpy(),
                               expected[["spacing_x_mm", "spacing_y_mm"]].to_numpy())
    assert (manifest["px_gland"] > 0).all()
    regions = ["region_x", "region_y", "region_width", "region_height"]
    assert manifest[regions].notna().all().all()  # the DICOM region travels too, for crop: dicom
    np.testing.assert_array_equal(manifest[regions].to_numpy(), expected[regions].to_numpy())
    source = json.loads((project / "artifacts" / "frames" / "source.json").read_text())
    assert source["origin"] == f"roboflow:{WORKSPACE}/{PROJECT}/1" and source["format"] == "coco-segmentation"
    pd.testing.assert_frame_equal(pd.read_csv(project / "checked" / "manifest.csv"), manifest)
    findings = json.loads((project / "reports" / "qc.json").read_text())["findings"]
    assert {(f["kind"], f["action"]) for f in findings} <= {("duplicate_frame", "warn")}  # ybr_color repeats frames
    assert (project / "checked.qc.json").is_file()
    assert_nothing_identifying(tmp_path, made.stdout + made.stderr, sent.stdout + sent.stderr,
                               pulled.stdout + pulled.stderr, checked.stdout + checked.stderr)


@pytest.mark.parametrize("args, message", [
    (["ingest", "nowhere.zip", "--out", "out"], "nowhere.zip: no such export (folder or .zip)"),
    (["ingest", "roboflow:ws/proj", "--out", "out"], "not a Roboflow source: 'roboflow:ws/proj'"),
    (["ingest", "roboflow:ws/proj/2", "--out", "out", "--format", "auto"], "--format auto only works for local"),
    (["ingest", "roboflow:ws/proj/2", "--out", "out"], "ROBOFLOW_API_KEY is not set"),
    (["upload", "frames", "--workspace", "ws", "--project", "p"], "ROBOFLOW_API_KEY is not set"),
])
def test_cli_errors_are_one_line(tmp_path: Path, args: list[str], message: str):
    result = run_cli(args, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in " ".join(result.stderr.split())
    assert not (tmp_path / "out").exists()


def test_ingest_cli_detects_the_format_and_writes_the_report(real_exports: Path, tmp_path: Path):
    export = real_exports / "DHCN_dataset.v1i.png-mask-semantic"
    result = run_cli(["ingest", str(export), "--out", "dhcn", "--classes", "ceiling,door"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(png-mask-semantic)" in result.stderr and "-> dhcn" in result.stderr
    manifest = pd.read_csv(tmp_path / "dhcn" / "manifest.csv")
    assert len(manifest) == len(list((tmp_path / "dhcn" / "images").iterdir())) > 0
    report = json.loads((tmp_path / "dhcn.qc.json").read_text())
    assert set(report["counts"]) <= {"unknown_patient", "empty_mask", "duplicate_frame"}
