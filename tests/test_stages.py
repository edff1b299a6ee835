"""The stage entry points run as `python -m pipeline.stages.<stage>` on a small synthetic export.

Each runs in a subprocess in a temporary project folder, as DVC runs them. All six stages run
through the real `dvc repro` in tests/test_dvc_pipeline.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.synthetic import SampleSpec, write_sample_export
from tests.conftest import PROJECT_ROOT, child_environment

SMALL = SampleSpec(n_patients=6, frames_per_patient=2, frame_width=320, frame_height=240)


def small_params(**overrides: dict) -> dict:
    """The project's params.yaml shrunk to seconds: 64 px, resnet18 from scratch, 1 epoch."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["preprocess"].update(size=64, filter={**params["preprocess"]["filter"], "method": "isotropic"})
    params["model"].update(encoder="resnet18", encoder_weights=None)
    params["train"].update(epochs=1, batch_size=2)
    params["split"].update(fractions=[0.5, 0.25, 0.25], folds=2)
    for section, values in overrides.items():
        params[section].update(values)
    return params


@pytest.fixture(scope="module")
def sample_export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export") / "data"
    write_sample_export(root, seed=3, spec=SMALL)
    return root


@pytest.fixture
def project(tmp_path: Path, sample_export: Path) -> Path:
    shutil.copytree(sample_export, tmp_path / "data")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small_params()))
    return tmp_path


def run_stage(stage: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"pipeline.stages.{stage}"], cwd=cwd, capture_output=True, text=True,
                          env=child_environment({"PYTHONPATH": str(PROJECT_ROOT)}), timeout=600)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_pull_preprocess_split(project: Path):
    for stage in ("pull", "preprocess", "split"):
        result = run_stage(stage, project)
        assert result.returncode == 0, result.stderr
    manifest = pd.read_csv(project / "artifacts/frames/manifest.csv")
    assert len(manifest) == 12 and manifest["patient"].nunique() == 6
    assert json.loads((project / "reports/qc.json").read_text()) == {"counts": {}, "findings": []}
    assert set(manifest["patient"]) == {f"P{i:03d}" for i in range(1, 7)}
    frames = pd.read_csv(project / "artifacts/processed/frames.csv")
    image = cv2.imread(str(project / "artifacts/processed/images" / f"{frames.frame_id[0]}.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape == (64, 64) and image.dtype == np.uint8
    assert {"crop_x", "crop_width", "pad_top", "scale_x"} <= set(frames.columns)
    split = json.loads((project / "artifacts/split.json").read_text())
    sides = [set(split["patients"][name]) for name in ("train", "val", "test")]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    by_frame = frames.set_index("frame_id")["patient"]
    for name, side in zip(("train", "val", "test"), sides):
        assert set(by_frame[split["frames"][name]]) == side


@pytest.mark.parametrize(
    "breakage, fragments",
    [
        ("corrupt-image", ["P00", ".jpg: not a readable image"]),
        ("no-annotations", ["images but no _annotations.coco.json"]),
        ("missing-image", ["1 of", "listed images are missing"]),
        ("unknown-class", ["class(es) tumour not in the export; it has gland, lesion"]),
    ],
)
def test_pull_bad_input_leaves_no_output(project: Path, breakage: str, fragments: list[str]):
    train = project / "data" / "train"
    image = sorted(train.glob("*.jpg"))[0]
    if breakage == "corrupt-image":
        image.write_bytes(image.read_bytes()[:300])
    elif breakage == "no-annotations":
        (train / "_annotations.coco.json").unlink()
    elif breakage == "missing-image":
        image.unlink()
    else:
        (project / "params.yaml").write_text(yaml.safe_dump(small_params(data={"classes": ["gland", "tumour"]})))
    result = run_stage("pull", project)
    assert_one_line_error(result, *fragments)
    assert not (project / "artifacts" / "frames").exists()
    assert not list((project / "artifacts").glob(".*partial"))


def push_polygon_outside(export: Path) -> str:
    """Moves the first annotation's polygon 1000 px right of its image; returns that image's file name."""
    path = export / "train" / "_annotations.coco.json"
    payload = json.loads(path.read_text())
    annotation = payload["annotations"][0]
    annotation["segmentation"] = [[v + 1000 if i % 2 == 0 else v for i, v in enumerate(ring)]
                                  for ring in annotation["segmentation"]]
    path.write_text(json.dumps(payload))
    return next(image["file_name"] for image in payload["images"] if image["id"] == annotation["image_id"])


def test_qc_error_stops_pull_after_writing_the_report(project: Path):
    image = push_polygon_outside(project / "data")
    result = run_stage("pull", project)
    assert_one_line_error(result, "1 annotation finding(s) stop the pipeline", f"outside_image in {image}",
                          "reports/qc.json", "qc.outside_image: warn")
    assert "error outside_image" in result.stdout  # the console summary
    assert not (project / "artifacts" / "frames").exists()
    report = json.loads((project / "reports" / "qc.json").read_text())
    assert report["counts"]["outside_image"] == {"error": 1}
    outside = next(finding for finding in report["findings"] if finding["kind"] == "outside_image")
    assert outside["frame"] == image and "vertex(es) outside 320x240" in outside["detail"]
    assert report["counts"]["empty_mask"] == {"warn": 1}  # moved off the image, it also fills no pixel
    (project / "params.yaml").write_text(yaml.safe_dump(small_params(qc={"outside_image": "warn"})))
    result = run_stage("pull", project)
    assert result.returncode == 0, result.stderr
    assert json.loads((project / "reports" / "qc.json").read_text())["counts"]["outside_image"] == {"warn": 1}
    assert len(pd.read_csv(project / "artifacts/frames/manifest.csv")) == 12


def test_frames_manifest_outside_the_tracked_export_is_refused(project: Path):
    (project / "frames.csv").write_text("original_name,patient,spacing_x_mm,spacing_y_mm\n")
    (project / "params.yaml").write_text(yaml.safe_dump(small_params(data={"frames_manifest": "frames.csv"})))
    assert_one_line_error(run_stage("pull", project), "frames.csv: data.frames_manifest must be inside "
                          "data.export_dir (data)")
    assert not (project / "artifacts" / "frames").exists()


def test_stage_without_upstream_output_says_which_stage(project: Path):
    assert_one_line_error(run_stage("preprocess", project), "artifacts/frames/manifest.csv", "'pull' stage")
