"""End to end on a fresh copy of the project, as a newcomer runs it: `make demo`, then DVC.

Slow (about 10 minutes on 2 cores): it trains the real demo model. Marked `slow`; CI runs it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.ingest.coco import read_coco_export
from pipeline.imaging.masks import read_bitmask, unpack_masks
from pipeline.evaluation.metrics import score_masks
from pipeline.synthetic import SampleSpec, write_sample_export
from tests.conftest import PROJECT_ROOT, copy_project, run_checked, stages_run

pytestmark = pytest.mark.slow


def run(command: list[str], cwd: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    """Runs ``command`` in ``cwd`` with the project's venv first on PATH (see :func:`run_checked`)."""
    return run_checked(command, cwd, cwd / ".venv" / "bin", timeout, QT_QPA_PLATFORM="offscreen")


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory) -> Path:
    """The committed project in a new git repository, sharing this checkout's .venv."""
    root = copy_project(tmp_path_factory.mktemp("clone") / "project")
    (root / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "fresh clone"], root)
    return root


@pytest.fixture(scope="module")
def demo(fresh_clone: Path) -> Path:
    run(["make", "demo"], fresh_clone, timeout=1800)
    return fresh_clone


def test_demo_reaches_the_gland_dice_target(demo: Path):
    metrics = json.loads((demo / "reports/metrics.json").read_text())
    # A floor against regressions, not issue 10's target (0.93): the Dice averages over every
    # frame with a gland in the truth or the prediction, so each gland drawn on one of the test's
    # gland-free frames costs 0.05 (README "Quick start" has the measured figures).
    assert metrics["test"]["gland"]["dice"] >= 0.85
    assert metrics["patients"] >= 3
    for output in ("models/model.onnx", "reports/per_frame.csv", "dvclive/metrics.json"):
        assert (demo / output).is_file(), output
    assert list((demo / "reports/overlays").glob("*.png"))


def test_second_repro_runs_nothing(demo: Path):
    result = run(["dvc", "repro"], demo)
    assert stages_run(result.stdout) == []
    assert "up to date" in run(["dvc", "status", "dvc.yaml"], demo).stdout  # cv/dvc.yaml runs only on request


def test_experiments_and_plots_are_visible(demo: Path):
    shown = run(["dvc", "exp", "show", "--json"], demo).stdout
    assert "demo-cpu" in shown and "reports/metrics.json" in shown
    run(["dvc", "plots", "show", "-o", "plots_html"], demo)
    assert (demo / "plots_html" / "index.html").is_file()


def test_model_generalises_to_another_seed_through_cli_and_app(demo: Path, tmp_path: Path):
    other = tmp_path / "other"
    write_sample_export(other, seed=7, spec=SampleSpec(n_patients=3, frames_per_patient=3))
    frames = [f for f in read_coco_export(other, ["gland", "lesion"]) if f.annotated]
    inputs = [str(f.image_path) for f in frames]
    run(["trus", "segment", *inputs, "--model", "models/model.onnx", "--out", str(tmp_path / "seg")], demo)
    dice = []
    for frame in frames:
        stem = frame.image_path.stem
        predicted = unpack_masks(read_bitmask(tmp_path / "seg" / f"{stem}_mask.png"), 2)
        assert predicted.shape[1:] == (frame.height, frame.width)
        dice.append(score_masks(predicted[0], frame.masks(2)[0]).dice)
    assert float(np.mean(dice)) >= 0.85
    shot = tmp_path / "shot.png"
    run([".venv/bin/python", "-m", "app", inputs[0], "--model", "models/model.onnx", "--screenshot", str(shot)], demo)
    assert cv2.imread(str(shot)).shape[:2] == (800, 1280)


def test_changing_a_train_param_reruns_train_evaluate_export_ood_only(demo: Path):
    params = yaml.safe_load((demo / "params.yaml").read_text())
    params["train"]["epochs"] = 1
    (demo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run(["dvc", "repro"], demo)
    assert stages_run(result.stdout) == ["train", "evaluate", "export", "ood"]
