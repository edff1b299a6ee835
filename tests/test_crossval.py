"""Cross-validation on hand-made per-frame tables: pooled means, per-fold values, the patient bootstrap, the checks.

Rows are built from pixel counts the way the evaluate stage writes them, so every Dice below is
2 I / (T + P) of the numbers in the table.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.config import CvParams, ParamsError, TrainParams, load_params
from pipeline.evaluation.crossval import (bootstrap_values, check_out_of_fold, check_patients, cv_report,
                                          distance_unit, percentile_interval, pool_folds, resample_patients)
from pipeline.evaluation.crossval_tables import markdown, plot_table, with_interval
from pipeline.evaluation.scoring import summarise
from pipeline.files.tables import read_table
from pipeline.layout import CV_FILE, SPLIT_FILE, fold_checkpoint, fold_dvclive_dir, fold_reports_dir
from pipeline.stages import cv_report as cv_report_stage
from pipeline.stages.evaluate import evaluation_run
from pipeline.stages.fold import fold_entry, fold_option
from pipeline.stages.train import check_fold_selection, train_run
from tests.conftest import PROJECT_ROOT

CLASSES = ("gland", "lesion")
NAN = math.nan


def row(frame: str, patient: str, name: str, truth: int, predicted: int, both: int, hd95: float = NAN,
        assd: float = NAN, mm_per_px: float | None = 0.5) -> dict:
    """A per-frame row as the evaluate stage writes it; distances in mm are ``mm_per_px`` times those in px."""
    total = truth + predicted
    scale = NAN if mm_per_px is None else mm_per_px
    return {"frame_id": frame, "patient": patient, "class": name,
            "dice": 2 * both / total if total else NAN, "iou": both / (total - both) if total else NAN,
            "hd95_px": hd95, "hd95_mm": hd95 * scale, "assd_px": assd, "assd_mm": assd * scale,
            "truth_px": truth, "predicted_px": predicted, "intersection_px": both}


# (frame, patient, gland (T, P, I, hd95 px, assd px), lesion (T, P, I, hd95 px, assd px))
FRAMES = [
    ("a1", "A", (100, 100, 90, 2.0, 1.0), (0, 0, 0, NAN, NAN)),       # gland 0.9
    ("a2", "A", (100, 100, 80, 4.0, 2.0), (20, 0, 0, NAN, NAN)),      # gland 0.8, lesion missed
    ("b1", "B", (100, 100, 100, 0.0, 0.0), (0, 10, 0, NAN, NAN)),     # gland 1.0, lesion false positive
    ("c1", "C", (50, 50, 35, 6.0, 3.0), (10, 10, 5, 2.0, 1.0)),       # gland 0.7, lesion 0.5
    ("d1", "D", (100, 0, 0, NAN, NAN), (0, 0, 0, NAN, NAN)),          # gland missed
    ("d2", "D", (100, 100, 60, 8.0, 4.0), (0, 0, 0, NAN, NAN)),       # gland 0.6
]
FOLD_OF = {"A": 0, "B": 0, "C": 1, "D": 1}


def table(frames=FRAMES, mm_per_px: float | None = 0.5) -> pd.DataFrame:
    return pd.DataFrame([row(frame, patient, name, *counts, mm_per_px=mm_per_px)
                         for frame, patient, *per_class in frames for name, counts in zip(CLASSES, per_class)])


def folds(per_frame: pd.DataFrame) -> dict[int, pd.DataFrame]:
    fold = per_frame["patient"].map(FOLD_OF)
    return {k: per_frame[fold == k].reset_index(drop=True) for k in (0, 1)}


@pytest.fixture(scope="module")
def report() -> dict:
    return cv_report(folds(table()), CLASSES, resamples=500, confidence=0.95, seed=0)


def test_pooled_values_are_the_evaluate_summary_of_all_out_of_fold_rows(report: dict):
    gland, lesion = report["classes"]["gland"]["pooled"], report["classes"]["lesion"]["pooled"]
    assert gland["dice"] == pytest.approx((0.9 + 0.8 + 1.0 + 0.7 + 0.0 + 0.6) / 6)
    assert gland["iou"] == pytest.approx((90 / 110 + 80 / 120 + 1.0 + 35 / 65 + 0.0 + 60 / 140) / 6)
    assert (gland["hd95_px"], gland["hd95_mm"], gland["assd_mm"]) == pytest.approx((4.0, 2.0, 1.0))
    assert [gland[key] for key in ("frames_with_class", "missed_frames", "false_positive_frames",
                                   "frames_scored")] == [6, 1, 0, 6]
    assert lesion["dice"] == pytest.approx(0.5 / 3)  # a2 missed (0), b1 invented (0), c1 0.5; empty frames not scored
    assert [lesion[key] for key in ("frames_with_class", "missed_frames", "false_positive_frames",
                                    "frames_scored")] == [2, 1, 1, 3]
    assert report["classes"]["gland"]["pooled"] == summarise(table(), CLASSES)["gland"]
    assert report["score"]["pooled"] == pytest.approx((4.0 / 6 + 0.5 / 3) / 2)
    assert (report["patients"], report["frames"], report["folds"], report["distance_unit"]) == (4, 6, [0, 1], "mm")


def test_per_fold_values_and_sizes(report: dict):
    gland, lesion = report["classes"]["gland"]["per_fold"], report["classes"]["lesion"]["per_fold"]
    assert gland["dice"] == pytest.approx([0.9, (0.7 + 0.0 + 0.6) / 3])
    assert gland["hd95"] == pytest.approx([1.0, 3.5])  # mm: (2 + 4 + 0) / 3 px and (6 + 8) / 2 px, at 0.5 mm/px
    assert gland["missed_frames"] == [0, 1]
    assert lesion["dice"] == pytest.approx([0.0, 0.5])
    assert lesion["hd95"] == [None, 1.0]  # fold 0 has no frame where truth and prediction both hold a lesion
    assert (lesion["missed_frames"], lesion["false_positive_frames"]) == ([1, 0], [1, 0])
    assert report["fold_sizes"] == [{"fold": 0, "patients": 2, "frames": 3}, {"fold": 1, "patients": 2, "frames": 3}]
    assert report["score"]["per_fold"] == pytest.approx([0.45, (1.3 / 3 + 0.5) / 2])


def test_intervals_contain_the_pooled_values(report: dict):
    assert report["bootstrap"] == {"unit": "patient", "resamples": 500, "seed": 0, "confidence": 0.95,
                                   "interval": "percentile"}
    for name in CLASSES:
        entry = report["classes"][name]
        for metric, interval in entry["interval"].items():
            value = entry["pooled"][metric if metric in ("dice", "iou") else f"{metric}_mm"]
            assert interval[0] - 1e-12 <= value <= interval[1] + 1e-12, (name, metric)
    low, high = report["score"]["interval"]
    assert low <= report["score"]["pooled"] <= high and low < high


def test_a_patient_with_many_frames_moves_as_one_patient():
    # Patient X: 10 missed glands (Dice 0). Y, Z, W: one perfect gland each (Dice 1). Pooled: 3 / 13.
    frames = [(f"x{i}", "X", (100, 0, 0, NAN, NAN), (0, 0, 0, NAN, NAN)) for i in range(10)]
    frames += [(f"{p.lower()}1", p, (100, 100, 100, 0.0, 0.0), (0, 0, 0, NAN, NAN)) for p in "YZW"]
    per_frame = table(frames)
    values = bootstrap_values(per_frame, CLASSES, "mm", resamples=2000, seed=0)["gland/dice"]
    # m draws of X among 4 patients: Dice (4 - m) / (10 m + 4 - m). A frame bootstrap would give other values.
    attainable = [(4 - m) / (10 * m + 4 - m) for m in range(5)]
    assert np.isin(np.round(values, 12), np.round(attainable, 12)).all()
    assert np.mean(values == 1.0) == pytest.approx(0.75 ** 4, abs=0.03)  # X not drawn at all
    # The interval: 2.5% lie at or below 1/31 (X drawn 3 or 4 times: 5.1%), X is absent in 31.6%.
    assert percentile_interval(values, 0.95) == pytest.approx([1 / 31, 1.0])
    assert summarise(per_frame, CLASSES)["gland"]["dice"] == pytest.approx(3 / 13)


def test_a_fixed_seed_gives_fixed_numbers():
    first = cv_report(folds(table()), CLASSES, resamples=200, confidence=0.9, seed=7)
    again = cv_report(folds(table()), CLASSES, resamples=200, confidence=0.9, seed=7)
    other = cv_report(folds(table()), CLASSES, resamples=200, confidence=0.9, seed=8)
    assert first == again
    assert first["classes"]["gland"]["interval"] != other["classes"]["gland"]["interval"]
    drawn = resample_patients(4, 3, seed=7)
    assert drawn.shape == (3, 4) and drawn.min() >= 0 and drawn.max() <= 3
    np.testing.assert_array_equal(drawn, resample_patients(4, 3, seed=7))


def test_undefined_distances_are_left_out_of_their_interval_and_counted(report: dict):
    # The lesion HD95 exists only on c1 (patient C): resamples without C leave it undefined.
    lesion = report["classes"]["lesion"]
    undefined = lesion["undefined_resamples"]
    assert undefined["dice"] == undefined["iou"] == 0
    assert 0.75 ** 4 * 500 * 0.7 < undefined["hd95"] == undefined["assd"] < 0.75 ** 4 * 500 * 1.3
    assert lesion["interval"]["hd95"] == pytest.approx([1.0, 1.0])
    assert percentile_interval(np.array([NAN, NAN]), 0.95) is None


@pytest.mark.parametrize("mm_per_px, unit", [(0.5, "mm"), (None, "px")])
def test_distances_are_in_mm_when_every_frame_has_a_spacing(mm_per_px: float | None, unit: str):
    assert distance_unit(table(mm_per_px=mm_per_px)) == unit
    mixed = pd.concat([table(), table(FRAMES[:1], mm_per_px=None).assign(frame_id="z1", patient="Z")])
    assert distance_unit(mixed) == "px"  # one frame without a spacing: px for all, comparable frames
    result = cv_report(folds(table(mm_per_px=mm_per_px)), CLASSES, resamples=100, confidence=0.95, seed=0)
    assert result["distance_unit"] == unit
    assert result["classes"]["gland"]["per_fold"]["hd95"][1] == pytest.approx(7.0 if unit == "px" else 3.5)


def test_a_patient_in_two_folds_is_refused():
    per_fold = folds(table())
    per_fold[1] = pd.concat([per_fold[1], per_fold[0][per_fold[0]["patient"] == "A"]])
    with pytest.raises(ValueError, match="patient\\(s\\) A scored in more than one fold"):
        pool_folds(per_fold)


SPLIT_FOLDS = [{"train": ["c1", "d1", "d2"], "val": ["a1", "a2", "b1"]},
               {"train": ["a1", "a2", "b1"], "val": ["c1", "d1", "d2"]}]


@pytest.mark.parametrize("frames, patient, message", [
    (["b1"], "", "per_frame.csv: 2 row\\(s\\) without a patient, 1 frame\\(s\\) \\(b1\\)"),  # written as an empty cell
    (["a1", "d2"], "  ", "per_frame.csv: 4 row\\(s\\) without a patient, 2 frame\\(s\\) \\(a1, d2\\)"),
    ([], "", None),
])
def test_rows_without_a_patient_are_refused(tmp_path, frames: list[str], patient: str, message: str | None):
    per_frame = table()
    per_frame.loc[per_frame["frame_id"].isin(frames), "patient"] = patient
    path = tmp_path / "per_frame.csv"
    per_frame.to_csv(path, index=False)  # read back as the pipeline reads it: an empty cell is missing
    read_back = read_table(path)
    if message is None:
        check_patients(read_back, path)
        return
    with pytest.raises(ValueError, match=message):
        check_patients(read_back, path)


def test_the_cv_report_stage_refuses_a_fold_table_without_patients_and_writes_nothing(tmp_path, monkeypatch,
                                                                                       capsys):
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    raw["cv"].update(folds=[0, 1], resamples=100)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(tmp_path)
    SPLIT_FILE.parent.mkdir(parents=True)
    SPLIT_FILE.write_text(json.dumps({"fold_frames": SPLIT_FOLDS}))
    per_fold = folds(table())
    per_fold[1].loc[per_fold[1]["frame_id"] == "c1", "patient"] = ""  # a hand edit; the bootstrap would drop it
    for fold, rows in per_fold.items():
        fold_reports_dir(fold).mkdir(parents=True)
        rows.to_csv(fold_reports_dir(fold) / "per_frame.csv", index=False)
    monkeypatch.setattr(sys, "argv", ["cv_report"])
    with pytest.raises(SystemExit) as stopped:
        cv_report_stage.run_stage(cv_report_stage.main)
    assert stopped.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error == ("error: reports/folds/1/per_frame.csv: 2 row(s) without a patient, 1 frame(s) (c1); every row "
                     "needs its patient: the intervals resample patients")
    assert not CV_FILE.exists()


@pytest.mark.parametrize("change, message", [
    (lambda per_fold: {0: per_fold[0]}, "needs every fold of the split, \\[0, 1\\]; got \\[0\\]"),
    (lambda per_fold: {0: per_fold[0].iloc[:-2], 1: per_fold[1]}, "fold 0: .* 1 missing"),
    (lambda per_fold: {0: per_fold[0], 1: per_fold[1].assign(frame_id="zz")}, "fold 1: .* unexpected"),
])
def test_tables_must_be_the_folds_validation_frames(change, message: str):
    check_out_of_fold(folds(table()), SPLIT_FOLDS, CLASSES)  # the real ones pass
    with pytest.raises(ValueError, match=message):
        check_out_of_fold(change(folds(table())), SPLIT_FOLDS, CLASSES)


def test_markdown_and_plot_rows(report: dict):
    text = markdown(report)
    gland = report["classes"]["gland"]
    low, high = gland["interval"]["dice"]
    assert f"| gland | 0.667 [{low:.3f}, {high:.3f}] |" in text
    assert text.splitlines()[3] == ("| class | Dice | IoU | HD95 (mm) | ASSD (mm) | frames with it | missed | "
                                    "false positive |")
    assert "| lesion | 0.167 [" in text and "| 2 | 1 | 1 |" in text
    assert "| 0 | 2 | 3 | 0.900 | 0.000 | 0.450 |" in text
    assert "500 resamples, seed 0" in text
    rows = plot_table(report)
    assert rows["run"].tolist() == ["fold 0 (2 patients)", "fold 1 (2 patients)", "pooled", "pooled 95% low",
                                    "pooled 95% high"]
    assert rows["gland"].tolist() == pytest.approx([0.9, 1.3 / 3, 4 / 6, low, high])
    assert with_interval(None, [0.1, 0.2], 3) == "n/a" and with_interval(0.5, None, 2) == "0.50"


@pytest.mark.parametrize("argv, fold", [([], None), (["--verbose"], None), (["--fold", "3"], 3),
                                        (["--fold=0", "--verbose"], 0)])
def test_fold_option(argv: list[str], fold: int | None):
    assert fold_option(argv) == fold


@pytest.mark.parametrize("argv, message", [(["--fold"], "needs a fold number"), (["--fold", "-1"], "needs a fold"),
                                           (["--fold=1", "--fold", "2"], "given 2 times")])
def test_bad_fold_option(argv: list[str], message: str):
    with pytest.raises(ValueError, match=message):
        fold_option(argv)


SPLIT = {"frames": {"train": ["a1"], "val": ["b1"], "test": ["t1", "t2"]},
         "patients": {"train": ["A"], "val": ["B"], "test": ["T"]},
         "folds": [{"train": ["B"], "val": ["A"]}, {"train": ["A"], "val": ["B"]}],
         "fold_frames": [{"train": ["b1"], "val": ["a1"]}, {"train": ["a1"], "val": ["b1"]}]}


def test_a_fold_reads_its_subsets_and_writes_its_own_paths():
    assert fold_entry(SPLIT, 1) == {"patients": {"train": ["A"], "val": ["B"]},
                                    "frames": {"train": ["a1"], "val": ["b1"]}}
    with pytest.raises(ValueError, match="--fold 2 but the split has 2 fold\\(s\\), numbered 0 to 1"):
        fold_entry(SPLIT, 2)
    run = train_run(1)
    assert (run.checkpoint.as_posix(), run.live_dir.as_posix(), run.subsets) == (
        "models/folds/1/checkpoint.pt", "dvclive/folds/1", "fold 1")
    assert (train_run(None).checkpoint.as_posix(), train_run(None).live_dir.as_posix()) == (
        "models/checkpoint.pt", "dvclive")
    fold = evaluation_run(SPLIT, 0)
    assert (fold.subset, fold.frame_ids, fold.patients, fold.overlays_dir) == ("val", ["a1"], ["A"], None)
    assert [path.as_posix() for path in (fold.checkpoint, fold.metrics_file, fold.per_frame_file,
                                         fold.per_frame_raw_file)] == [
        "models/folds/0/checkpoint.pt", "reports/folds/0/metrics.json", "reports/folds/0/per_frame.csv",
        "reports/folds/0/per_frame_raw.csv"]
    test = evaluation_run(SPLIT, None)
    assert (test.subset, test.frame_ids, test.checkpoint.as_posix(), test.overlays_dir.as_posix()) == (
        "test", ["t1", "t2"], "models/checkpoint.pt", "reports/overlays")
    assert (fold_checkpoint(4).as_posix(), fold_dvclive_dir(4).as_posix(), fold_reports_dir(4).as_posix()) == (
        "models/folds/4/checkpoint.pt", "dvclive/folds/4", "reports/folds/4")


@pytest.mark.parametrize("values, message", [
    ({"folds": []}, "cv.folds"), ({"folds": [0, 0]}, "cv.folds"), ({"folds": [-1]}, "cv.folds"),
    ({"resamples": 10}, "cv.resamples"), ({"confidence": 1.0}, "cv.confidence"), ({"seed": -1}, "cv.seed"),
])
def test_bad_cv_params_are_refused(tmp_path, values: dict, message: str):
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    raw["cv"].update(values)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=message):
        load_params(tmp_path / "params.yaml")
    assert CvParams().folds == (0, 1, 2, 3, 4)


@pytest.mark.parametrize("keep, patience, fold, message", [
    ("best", None, 2, "train.keep is best, but fold 2"),
    ("last", 3, 0, "train.early_stopping_patience is set, but fold 0"),
    ("best", 3, None, None),  # the deployed model may choose its epoch on its validation patients
    ("last", None, 1, None),
])
def test_a_fold_keeps_its_last_epoch(keep: str, patience: int | None, fold: int | None, message: str | None):
    train = TrainParams(keep=keep, early_stopping_patience=patience)
    if message is None:
        check_fold_selection(train, fold)
    else:
        with pytest.raises(ParamsError, match=message):
            check_fold_selection(train, fold)


def test_tables_with_planes_are_also_reported_per_plane():
    per_frame = table()
    # a1, b1, d1: transverse; a2, c1, d2: sagittal
    per_frame["plane"] = per_frame["frame_id"].map({"a1": "transverse", "b1": "transverse", "d1": "transverse",
                                                    "a2": "sagittal", "c1": "sagittal", "d2": "sagittal"})
    planes = cv_report(folds(per_frame), CLASSES, resamples=300, confidence=0.95, seed=0)["by_plane"]
    assert list(planes) == ["transverse", "sagittal"]
    assert planes["transverse"]["frames"] == 3 and planes["sagittal"]["frames"] == 3
    # transverse gland: 0.9, 1.0 and a missed gland (0) -> mean 0.633; sagittal: 0.8, 0.7, 0.6 -> 0.7
    assert planes["transverse"]["gland"]["dice"] == pytest.approx((0.9 + 1.0 + 0.0) / 3)
    assert planes["sagittal"]["gland"]["dice"] == pytest.approx(0.7)
    # sagittal lesion: a2 missed (0), c1 0.5 -> 0.25; transverse lesion: b1 false positive only -> 0
    assert planes["sagittal"]["lesion"]["dice"] == pytest.approx(0.25)
    assert planes["transverse"]["lesion"]["false_positive_frames"] == 1
    low, high = planes["sagittal"]["gland"]["dice_interval"]
    assert 0.6 - 1e-9 <= low <= 0.7 <= high <= 0.8 + 1e-9


def test_tables_without_planes_have_no_plane_report(report: dict):
    assert "by_plane" not in report and "plane_accuracy" not in report


@pytest.mark.parametrize(("predicted", "expected"), [
    # fold 0 (a1 a2 b1): 2 of 3 right; fold 1 (c1 d1 d2): d1's plane unknown, 1 of 2 right -> pooled 3 of 5
    ({"a1": "transverse", "a2": "transverse", "b1": "transverse", "c1": "sagittal", "d1": "sagittal",
      "d2": "transverse"}, {"pooled": 0.6, "frames": 5, "per_fold": [2 / 3, 0.5]}),
    ({name: "" for name in ("a1", "a2", "b1", "c1", "d1", "d2")}, None),  # no plane head: no accuracy
], ids=["with-head", "without-head"])
def test_the_plane_heads_accuracy_is_pooled_and_per_fold(predicted: dict, expected: dict | None):
    per_frame = table()
    per_frame["plane"] = per_frame["frame_id"].map({"a1": "transverse", "a2": "sagittal", "b1": "transverse",
                                                    "c1": "sagittal", "d1": "unknown", "d2": "sagittal"})
    per_frame["predicted_plane"] = per_frame["frame_id"].map(predicted)
    report = cv_report(folds(per_frame), CLASSES, resamples=50, confidence=0.95, seed=0)
    if expected is None:
        assert "plane_accuracy" not in report and "Plane head" not in markdown(report)
        return
    accuracy = report["plane_accuracy"]
    assert accuracy["frames"] == expected["frames"] and accuracy["pooled"] == pytest.approx(expected["pooled"])
    assert accuracy["per_fold"] == pytest.approx(expected["per_fold"])
    assert "Plane head: accuracy 0.600 on the 5 frames of a known plane (per fold: 0.67, 0.50)." in markdown(report)


def test_the_markdown_has_a_plane_table_when_there_are_planes():
    per_frame = table()
    per_frame["plane"] = per_frame["frame_id"].str[1].map({"1": "transverse", "2": "sagittal"})
    text = markdown(cv_report(folds(per_frame), CLASSES, resamples=200, confidence=0.95, seed=0))
    lines = text.splitlines()
    header = lines.index("| plane | frames | gland Dice | lesion Dice | score |")
    assert lines[header + 2].startswith("| transverse | 4 | 0.650 [")
    assert lines[header + 3].startswith("| sagittal | 2 | 0.700 [")
