"""All seven stages through the real `dvc repro`, fast: a copy of the project in a new git repository,
a 12-frame export in data/, 64 px, resnet18 from scratch, 1 epoch.

Frame ids and patients are digit strings with leading zeros (frame ``0071``, patient ``007``): they
must stay text from the export's file names to every artifact. Then the dvc.yaml wiring: a second
repro runs nothing, a code change reruns the stages that run that code (and those whose inputs
then change), and compiling the code leaves ``dvc status dvc.yaml`` clean (this file's pipeline: the
cross-validation one, cv/dvc.yaml, runs only on request and is tested in tests/test_dvc_cv.py).
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.inference.predictor import Segmenter
from tests.conftest import DIGIT_PATIENTS, fast_params, run_checked, small_dvc_project, stages_run

STAGES = ["pull", "preprocess", "split", "train", "evaluate", "export", "ood"]
PATIENTS = DIGIT_PATIENTS  # P001..P006 of the synthetic sample, in order
FRAMES = {f"{patient}{frame}": patient for patient in PATIENTS for frame in (1, 2)}  # "0071" -> "007"
VENV_BIN = Path(sys.executable).parent  # the venv running the tests: its dvc and python run the stages


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs ``command`` in ``cwd`` with the test venv first on PATH (see :func:`run_checked`)."""
    return run_checked(command, cwd, VENV_BIN, timeout)


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the project after `dvc add data`, commit and `dvc repro`, the repro's stdout)."""
    assert (VENV_BIN / "dvc").is_file(), f"{VENV_BIN}/dvc missing: run the tests with the project's venv"
    root = small_dvc_project(tmp_path_factory.mktemp("dvc") / "project", VENV_BIN, fast_params())
    return root, run(["dvc", "repro"], root).stdout


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV as text, the way a person reads it (no type guessing)."""
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_repro_runs_the_seven_stages_in_order(repro: tuple[Path, str]):
    root, output = repro
    assert stages_run(output) == STAGES
    assert list(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == STAGES
    assert not [path for path in ("cv/dvc.lock", "models/folds", "reports/folds", "reports/cv.json")
                if (root / path).exists()]  # cross-validation (tests/test_dvc_cv.py) runs only on request


def test_frame_ids_and_patients_stay_text(repro: tuple[Path, str]):
    root, _ = repro
    manifest = read_csv(root / "artifacts/frames/manifest.csv")
    assert {row["frame_id"]: row["patient"] for row in manifest} == FRAMES
    assert {row["original_name"] for row in manifest} == {f"{frame}.jpg" for frame in FRAMES}
    processed = read_csv(root / "artifacts/processed/frames.csv")
    assert {row["frame_id"]: row["patient"] for row in processed} == FRAMES
    split = json.loads((root / "artifacts/split.json").read_text())
    sides = [split["patients"][name] for name in ("train", "val", "test")]
    assert sorted(p for side in sides for p in side) == PATIENTS and [len(side) for side in sides] == [2, 2, 2]
    for name, side in zip(("train", "val", "test"), sides):
        assert sorted(split["frames"][name]) == sorted(f for f, p in FRAMES.items() if p in side)
    per_frame = read_csv(root / "reports/per_frame.csv")
    assert {row["frame_id"] for row in per_frame} == set(split["frames"]["test"])
    assert {row["patient"] for row in per_frame} == set(split["patients"]["test"])
    assert sorted((row["frame_id"], row["class"]) for row in per_frame) == sorted(
        (frame, name) for frame in split["frames"]["test"] for name in ("gland", "lesion"))
    for row in per_frame:  # a frame with the class in neither truth nor prediction is not scored: no Dice
        scored = int(row["truth_px"]) + int(row["predicted_px"]) > 0
        assert 0.0 <= float(row["dice"]) <= 1.0 if scored else row["dice"] == ""
    raw = read_csv(root / "reports/per_frame_raw.csv")  # the same frames without post-processing
    assert sorted((row["frame_id"], row["class"]) for row in raw) == sorted(
        (row["frame_id"], row["class"]) for row in per_frame)


def test_metrics_per_class_on_the_test_patients(repro: tuple[Path, str]):
    root, _ = repro
    metrics = json.loads((root / "reports/metrics.json").read_text())
    test_frames = json.loads((root / "artifacts/split.json").read_text())["frames"]["test"]
    assert metrics["frames"] == len(test_frames) == 4 and metrics["patients"] == 2
    assert set(metrics["test"]) == {"gland", "lesion"}
    truth = {row["frame_id"]: row for row in read_csv(root / "artifacts/frames/manifest.csv")}
    for name, summary in metrics["test"].items():
        assert summary["frames_with_class"] == sum(int(truth[f][f"px_{name}"]) > 0 for f in test_frames)
        assert 0.0 <= summary["dice"] <= 1.0 and 0.0 <= summary["iou"] <= summary["dice"]
        assert metrics["test_raw"][name]["frames_with_class"] == summary["frames_with_class"]
    assert metrics["score"] == pytest.approx(sum(summary["dice"] for summary in metrics["test"].values()) / 2)
    assert len(list((root / "reports/overlays").glob("*.png"))) == 2


def test_exported_model_runs_in_onnx_runtime_with_its_contract(repro: tuple[Path, str]):
    root, output = repro
    segmenter = Segmenter(root / "models/model.onnx")
    contract = segmenter.contract
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert contract.classes == ("gland", "lesion") and contract.size == 64
    assert (contract.arch, contract.encoder, contract.preprocess.filter.method) == ("FPN", "resnet18", "isotropic")
    assert contract.metrics == metrics["test"] and "SYNTHETIC" in contract.note
    assert len(contract.dataset_version) == 16 and contract.code_version != "unknown"
    # The review flag is calibrated on the validation frames; a model this small may find no gland on any.
    assert "export: review flag: " in output
    if contract.review is None:
        assert "review flag: not calibrated" in output
    else:
        review = contract.review
        assert 0.0 <= review.uncertainty <= 1.0 and review.dice_floor == 0.9 and 1 <= review.frames <= 20
        assert f"border uncertainty > {review.uncertainty:.4f}, calibrated on {review.frames} validation" in output
    frame = cv2.imread(str(next((root / "data").glob("*/0071.jpg"))), cv2.IMREAD_GRAYSCALE)
    probabilities = segmenter.segment(frame).probabilities
    assert probabilities.shape == (2, 240, 320) and probabilities.dtype == np.float32
    assert 0.0 <= probabilities.min() <= probabilities.max() <= 1.0


def test_export_writes_the_int8_model_only_with_a_passed_gate(repro: tuple[Path, str]):
    """The INT8 step ran on the real pipeline: its report, its folder (a DVC output even when empty) and, when
    the gate passed, a quantised model (7-bit weights) made from this float model that the runtime picks even on
    an AVX2 CPU without VNNI."""
    root, output = repro
    report = json.loads((root / "reports/int8.json").read_text())
    assert report["enabled"] and report["calibration"] == "percentile" and report["float_nodes"] >= 2
    assert report["weight_bits"] == 7
    gate = report["gate"]
    assert gate["passed"] == report["written"] == (gate["failures"] == [])
    assert set(gate["mask_dice"]) == {"gland", "lesion"} and gate["frames"] == len(
        json.loads((root / "artifacts/split.json").read_text())["frames"]["test"])
    int8 = root / "models/int8/model.int8.onnx"
    assert (root / "models/int8").is_dir() and int8.is_file() is report["written"]
    segmenter = Segmenter(root / "models/model.onnx", kernels="avx2")
    if report["written"]:
        assert "export: int8: models/int8/model.int8.onnx (7-bit weights, percentile calibration on" in output
        assert segmenter.path == int8 and segmenter.contract.quantization["gate"] == gate
    else:
        assert "export: int8: gate failed, no INT8 model written" in output
        assert segmenter.path == root / "models/model.onnx" and segmenter.precision == "fp32"


def test_ood_scores_the_deployed_model_on_each_variant(repro: tuple[Path, str]):
    root, _ = repro
    report = json.loads((root / "reports/ood.json").read_text())
    metrics = json.loads((root / "reports/metrics.json").read_text())
    assert report["in_distribution"] == metrics["test"] and report["model"] == "models/model.onnx"
    assert list(report["variants"]) == ["default", "probe_bottom"]
    assert [scores["frames"] for scores in report["variants"].values()] == [2, 2]
    plot = read_csv(root / "reports/ood_dice.csv")
    assert [row["variant"] for row in plot] == ["test (in distribution)", "default", "probe_bottom"]
    rows = read_csv(root / "reports/ood_per_frame.csv")  # a declared output of the stage: 2 frames x 2 classes each
    assert [row["variant"] for row in rows] == ["default"] * 4 + ["probe_bottom"] * 4


# The wiring tests change the project: they run after the tests above (pytest keeps file order).

def test_second_repro_runs_nothing(repro: tuple[Path, str]):
    root, _ = repro
    assert stages_run(run(["dvc", "repro"], root).stdout) == []
    assert "Data and pipelines are up to date." in run(["dvc", "status", "dvc.yaml"], root).stdout


@pytest.mark.parametrize("code_file, expected", [
    ("pipeline/stages/evaluate.py", ["evaluate"]),  # same metrics, so export (which reads them) does not rerun
    ("pipeline/stages/split.py", ["split"]),
    ("pipeline/training/onnx_export.py", ["export", "ood"]),  # the contract's code_version turns +modified: a new model
    ("pipeline/training/losses.py", ["train"]),  # seeded training: the same checkpoint bytes, nothing downstream
    ("pipeline/stages/ood.py", ["ood"]),
])
def test_a_code_change_reruns_the_stages_that_run_it(repro: tuple[Path, str], code_file: str, expected: list[str]):
    root, _ = repro
    with (root / code_file).open("a") as file:
        file.write("# changed by test_dvc_pipeline\n")
    assert stages_run(run(["dvc", "repro"], root).stdout) == expected
    assert "Data and pipelines are up to date." in run(["dvc", "status", "dvc.yaml"], root).stdout


def test_compiling_the_code_leaves_dvc_status_clean(repro: tuple[Path, str]):
    root, _ = repro
    for cache in (root / "pipeline").rglob("__pycache__"):
        shutil.rmtree(cache)
    run([str(VENV_BIN / "python"), "-m", "compileall", "-q", "pipeline"], root)
    assert len(list((root / "pipeline").rglob("__pycache__/*.pyc"))) > 50
    assert "Data and pipelines are up to date." in run(["dvc", "status", "dvc.yaml"], root).stdout
