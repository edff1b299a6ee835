"""Cross-validation through the real `dvc repro cv/dvc.yaml`, fast: a copy of the project in a new git
repository, the 12-frame export of tests/test_dvc_pipeline.py (6 patients: 2 train, 2 val, 2 test), 64 px,
ResNet-18 from scratch, 2 epochs, 2 folds over the 4 train+val patients.

It checks that cross-validation runs only when asked for (a plain `dvc repro` reproduces dvc.yaml,
whose graph holds no cv stage; tests/test_dvc_pipeline.py runs it for real and finds no fold output),
that `dvc repro cv/dvc.yaml` trains and evaluates every fold and then writes the report, what
reports/cv.json holds (pooled values inside their bootstrap intervals, per-fold values equal to the
folds' own evaluations, frame counts), that the out-of-fold frames are exactly the train+val
patients' frames, that each fold's checkpoint holds its last epoch, that a second repro runs
nothing, that `dvc plots show` draws the cross-validation plots, and that `dvc exp run
cv/dvc.yaml -S cv...` reruns the report alone.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.files.tables import read_table
from pipeline.training.checkpoint import load_checkpoint
from tests.conftest import fast_params, run_checked, small_dvc_project, stages_run

VENV_BIN = Path(sys.executable).parent  # the venv running the tests: its dvc and python run the stages
FOLDS = [0, 1]
EPOCHS = 2
CLASSES = ("gland", "lesion")
UPSTREAM = ["pull", "preprocess", "split"]  # the main pipeline's stages that cross-validation reads from
MAIN_ONLY = ["train", "evaluate", "export", "ood"]
CV_STAGES = [f"cv/dvc.yaml:{stage}@{fold}" for stage in ("train", "evaluate") for fold in FOLDS] + [
    "cv/dvc.yaml:cv_report"]
METRICS = ("dice", "iou", "hd95", "assd")
COUNTS = ("frames_with_class", "missed_frames", "false_positive_frames", "frames_scored")
RESAMPLES = 200


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Runs ``command`` in ``cwd`` with the test venv first on PATH (see :func:`run_checked`)."""
    return run_checked(command, cwd, VENV_BIN, timeout)


def cv_params() -> dict:
    """:func:`fast_params` with 2 epochs (so that "last" and "first" differ), 2 folds and a low threshold.

    After 2 epochs from scratch the network's probabilities stay far below 0.5; a threshold of 0.02
    gives it non-empty masks, so HD95 and ASSD have frames to be measured on.
    """
    params = fast_params()
    params["train"]["epochs"] = EPOCHS
    params["inference"]["threshold"] = 0.02
    params["split"]["folds"] = len(FOLDS)
    params["cv"].update(folds=FOLDS, resamples=RESAMPLES, confidence=0.95, seed=0)
    return params


@pytest.fixture(scope="module")
def cv_repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the project after `dvc add data`, commit and `dvc repro cv/dvc.yaml`, the repro's stdout)."""
    assert (VENV_BIN / "dvc").is_file(), f"{VENV_BIN}/dvc missing: run the tests with the project's venv"
    root = small_dvc_project(tmp_path_factory.mktemp("dvc_cv") / "project", VENV_BIN, cv_params())
    return root, run(["dvc", "repro", "cv/dvc.yaml"], root).stdout


def split_of(root: Path) -> dict:
    return json.loads((root / "artifacts/split.json").read_text())


def fold_tables(root: Path) -> dict[int, pd.DataFrame]:
    """Each fold's out-of-fold per-frame table, ids and patients as text."""
    return {fold: read_table(root / f"reports/folds/{fold}/per_frame.csv") for fold in FOLDS}


def dag_nodes(root: Path, target: str) -> set[str]:
    """The stages ``dvc repro <target>`` considers: the target's stages and everything upstream (``dvc dag``)."""
    dot = run(["dvc", "dag", "--dot", target], root).stdout
    return {name for name in re.findall(r'^"([^"]+)";$', dot, re.MULTILINE) if not name.endswith(".dvc")}


def test_cross_validation_runs_only_when_asked_for(cv_repro: tuple[Path, str]):
    root, output = cv_repro
    ran = stages_run(output)
    assert ran[:3] == UPSTREAM and sorted(ran[3:]) == sorted(CV_STAGES) and ran[-1] == "cv/dvc.yaml:cv_report"
    for fold in FOLDS:
        assert ran.index(f"cv/dvc.yaml:train@{fold}") < ran.index(f"cv/dvc.yaml:evaluate@{fold}")
    # a plain `dvc repro` is `dvc repro dvc.yaml`: its graph holds the main stages and none of cv/dvc.yaml's
    assert dag_nodes(root, "dvc.yaml") == set(UPSTREAM + MAIN_ONLY)
    assert dag_nodes(root, "cv/dvc.yaml") == set(UPSTREAM + CV_STAGES)
    # and the cross-validation ran none of the main pipeline's training, evaluation or export
    assert list(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == UPSTREAM
    assert sorted(yaml.safe_load((root / "cv/dvc.lock").read_text())["stages"]) == sorted(
        stage.split(":")[1] for stage in CV_STAGES)
    assert not any((root / path).exists() for path in ("models/checkpoint.pt", "reports/metrics.json",
                                                       "models/model.onnx", "dvclive/metrics.json"))


def test_out_of_fold_frames_are_the_train_and_val_patients_frames(cv_repro: tuple[Path, str]):
    root, output = cv_repro
    split, tables = split_of(root), fold_tables(root)
    train_val = split["frames"]["train"] + split["frames"]["val"]
    patients = set(split["patients"]["train"] + split["patients"]["val"])
    pooled = pd.concat(tables.values())
    assert sorted(pooled["frame_id"].unique()) == sorted(train_val) and len(train_val) == 8
    assert sorted(zip(pooled["frame_id"], pooled["class"])) == sorted(
        (frame, name) for frame in train_val for name in CLASSES)  # each frame once, with every class
    assert set(pooled["patient"]) == patients and not patients & set(split["patients"]["test"])
    assert not set(pooled["frame_id"]) & set(split["frames"]["test"])
    for fold, table in tables.items():  # fold k scores its validation patients, and trained on the others
        entry = split["folds"][fold]
        assert set(table["patient"]) == set(entry["val"]) and not set(entry["val"]) & set(entry["train"])
        assert set(entry["val"]) | set(entry["train"]) == patients
        assert sorted(table["frame_id"].unique()) == sorted(split["fold_frames"][fold]["val"])
        counts = (len(split["fold_frames"][fold]["train"]), len(split["fold_frames"][fold]["val"]))
        assert f"train (fold {fold}): {counts[0]} training/{counts[1]} validation frames" in output


def test_fold_checkpoints_hold_their_last_epoch(cv_repro: tuple[Path, str]):
    root, _ = cv_repro
    lock = yaml.safe_load((root / "cv/dvc.lock").read_text())["stages"]
    for fold in FOLDS:
        _, info = load_checkpoint(root / f"models/folds/{fold}/checkpoint.pt")
        assert info["epoch"] == EPOCHS  # train.keep: last, whatever epoch scored best on the fold's validation
        live = json.loads((root / f"dvclive/folds/{fold}/metrics.json").read_text())
        assert live["step"] == EPOCHS - 1  # DVCLive counts epochs from 0
        assert f"models/folds/{fold}/checkpoint.pt" in [out["path"] for out in lock[f"train@{fold}"]["outs"]]


def patients(count: int) -> str:
    return f"{count} patient" + "s" * (count != 1)


def same(value: float | None, expected: float | None) -> bool:
    """Both undefined (None), or equal to rounding."""
    return value is None and expected is None or None not in (value, expected) and value == pytest.approx(expected)


def within(value: float, interval: list[float]) -> bool:
    low, high = interval
    return low - 1e-9 <= value <= high + 1e-9


def test_cv_json_pools_the_folds_with_patient_bootstrap_intervals(cv_repro: tuple[Path, str]):
    root, _ = cv_repro
    report = json.loads((root / "reports/cv.json").read_text())
    split, tables = split_of(root), fold_tables(root)
    pooled_rows = pd.concat(tables.values())
    assert report["folds"] == FOLDS and report["patients"] == 4 and report["frames"] == 8
    assert [size["patients"] for size in report["fold_sizes"]] == [len(fold["val"]) for fold in split["folds"]]
    assert report["bootstrap"] == {"unit": "patient", "resamples": RESAMPLES, "seed": 0, "confidence": 0.95,
                                   "interval": "percentile"}
    unit = report["distance_unit"]
    assert unit == "px"  # the sample's COCO export has no pixel spacing
    truth = {row["frame_id"]: row for _, row in read_table(root / "artifacts/frames/manifest.csv").iterrows()}
    for name in CLASSES:
        entry = report["classes"][name]
        pooled, interval, per_fold = entry["pooled"], entry["interval"], entry["per_fold"]
        for metric in METRICS:
            value = pooled[metric if metric in ("dice", "iou") else f"{metric}_{unit}"]
            if value is None:  # no frame where truth and prediction both hold the class
                assert interval[metric] is None and entry["undefined_resamples"][metric] == RESAMPLES
            else:
                assert within(value, interval[metric]), (name, metric, value, interval[metric])
            assert len(per_fold[metric]) == len(FOLDS)
        rows = pooled_rows[pooled_rows["class"] == name]
        truth_px, predicted_px = rows["truth_px"].astype(int), rows["predicted_px"].astype(int)
        assert pooled["frames_with_class"] == int((truth_px > 0).sum()) == sum(
            int(truth[frame][f"px_{name}"]) > 0 for frame in rows["frame_id"])
        assert pooled["missed_frames"] == int(((truth_px > 0) & (predicted_px == 0)).sum())  # empty prediction
        assert pooled["false_positive_frames"] == int(((truth_px == 0) & (predicted_px > 0)).sum())  # empty truth
        assert pooled["frames_scored"] == int(((truth_px > 0) | (predicted_px > 0)).sum())
        for count in COUNTS:
            assert sum(per_fold[count]) == pooled[count]
        for index, fold in enumerate(FOLDS):  # per-fold values: each fold's own evaluation
            evaluation = json.loads((root / f"reports/folds/{fold}/metrics.json").read_text())["val"][name]
            for metric in METRICS:
                assert same(per_fold[metric][index], evaluation[metric if metric in ("dice", "iou") else
                                                                f"{metric}_{unit}"]), (name, fold, metric)
            assert [per_fold[count][index] for count in COUNTS] == [evaluation[count] for count in COUNTS]
    gland = report["classes"]["gland"]["pooled"]
    assert gland[f"hd95_{unit}"] is not None and gland[f"assd_{unit}"] is not None  # the distances were measured
    score = report["score"]
    assert score["pooled"] == pytest.approx(sum(report["classes"][name]["pooled"]["dice"] for name in CLASSES) / 2)
    assert within(score["pooled"], score["interval"]) and len(score["per_fold"]) == len(FOLDS)


def test_cv_tables_for_people_and_plots(cv_repro: tuple[Path, str]):
    root, _ = cv_repro
    report = json.loads((root / "reports/cv.json").read_text())
    text = (root / "reports/cv.md").read_text()
    assert text.startswith(f"Cross-validation: {len(FOLDS)} folds over 4 train+val patients (8 frames)")
    assert f"{RESAMPLES} resamples, seed 0" in text
    plot = read_table(root / "reports/cv_dice.csv")
    assert plot["run"].tolist() == [f"fold {fold} ({patients(len(entry['val']))})" for fold, entry in
                                    enumerate(split_of(root)["folds"])] + ["pooled", "pooled 95% low",
                                                                           "pooled 95% high"]
    assert plot["gland"].astype(float).tolist() == pytest.approx(
        report["classes"]["gland"]["per_fold"]["dice"] + [report["classes"]["gland"]["pooled"]["dice"]]
        + report["classes"]["gland"]["interval"]["dice"], abs=5e-5)  # written with 4 decimals


def test_dvc_plots_show_draws_the_cross_validation(cv_repro: tuple[Path, str]):
    root, _ = cv_repro
    shown = json.loads(run(["dvc", "plots", "show", "--json", "cv/dvc.yaml::"], root).stdout)
    assert "errors" not in shown
    plots = shown["data"]
    bars = ["Gland Dice per fold (cross-validation)", "Lesion Dice per fold (cross-validation)"]
    assert set(bars) <= set(plots)
    for fold in FOLDS:
        assert f"dvclive/folds/{fold}/plots/metrics/val/score.tsv" in plots
    assert not [plot for plot in plots if plot.startswith(("dvclive/plots", "reports/ood", "Training curves"))]
    gland = plots[bars[0]][0]["content"]
    assert gland["mark"]["type"] == "bar" and len(gland["data"]["values"]) == len(FOLDS) + 3
    run(["dvc", "plots", "show", "cv/dvc.yaml::", "-o", "cv_plots"], root)
    assert (root / "cv_plots/index.html").stat().st_size > 0


# The tests below change the project: they run after those above (pytest keeps file order).

def test_second_cv_repro_runs_nothing(cv_repro: tuple[Path, str]):
    root, _ = cv_repro
    assert stages_run(run(["dvc", "repro", "cv/dvc.yaml"], root).stdout) == []
    assert "Data and pipelines are up to date." in run(["dvc", "status", "cv/dvc.yaml"], root).stdout


def test_exp_run_with_a_bootstrap_param_reruns_the_report_alone(cv_repro: tuple[Path, str]):
    root, _ = cv_repro
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "cross-validation"], root)
    before = json.loads((root / "reports/cv.json").read_text())
    output = run(["dvc", "exp", "run", "cv/dvc.yaml", "-S", "cv.resamples=300", "-S", "cv.seed=1"], root).stdout
    assert stages_run(output) == ["cv/dvc.yaml:cv_report"]
    after = json.loads((root / "reports/cv.json").read_text())
    assert after["bootstrap"]["resamples"] == 300 and after["bootstrap"]["seed"] == 1
    for name in CLASSES:  # the same out-of-fold tables: the same pooled values, other resamples
        assert after["classes"][name]["pooled"] == before["classes"][name]["pooled"]
        assert after["classes"][name]["per_fold"] == before["classes"][name]["per_fold"]
    assert not math.isnan(after["score"]["pooled"])
