"""`trus compare`: two evaluations of the same frames, the paired patient bootstrap of their difference.

The tables are the hand-made per-frame rows of tests/test_crossval.py (every Dice is
2 I / (T + P) of the counts written there); the candidates change known frames by known amounts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.evaluation.crossval import cv_report
from pipeline.evaluation.paired import (REQUIRED_COLUMNS, _bound, check_paired, compare, markdown, read_evaluation,
                                       verdict)
from pipeline.evaluation.scoring import frame_rows
from tests.test_crossval import CLASSES, FRAMES, folds, table

RESAMPLES = 200


def changed(frames, edits: dict[tuple[str, str], tuple]) -> pd.DataFrame:
    """The table of ``frames`` with the (frame, class) counts in ``edits`` replaced by (T, P, I, hd95, assd)."""
    rows = []
    for frame, patient, gland, lesion in frames:
        rows.append((frame, patient, edits.get((frame, "gland"), gland), edits.get((frame, "lesion"), lesion)))
    return table(rows)


def quantities(baseline: pd.DataFrame, candidate: pd.DataFrame, seed: int = 0) -> dict:
    return compare(baseline, candidate, list(CLASSES), RESAMPLES, 0.95, seed)["quantities"]


NAN = float("nan")
# gland + 2 px of overlap on every frame of T = P = 100 (Dice + 0.02), + 1 px on c1 (T = P = 50, + 0.02)
GLAND_BETTER_ALMOST_EVERYWHERE = {("a1", "gland"): (100, 100, 92, 2.0, 1.0), ("a2", "gland"): (100, 100, 82, 4.0, 2.0),
                                  ("c1", "gland"): (50, 50, 36, 6.0, 3.0), ("d2", "gland"): (100, 100, 62, 8.0, 4.0)}
WITHOUT_B_INVENTED_LESION = {("b1", "lesion"): (0, 0, 0, NAN, NAN)}


def test_the_same_evaluation_twice_differs_by_nothing():
    result = quantities(table(), table())
    for key, entry in result.items():
        assert entry["baseline"] == entry["candidate"], key
        if entry["difference"] is not None:
            assert entry["difference"] == 0 and entry["interval"] == [0.0, 0.0] and entry["verdict"] == "unclear", key
    assert list(result)[:6] == ["gland/dice", "gland/iou", "gland/hd95", "gland/assd", "gland/missed_frames",
                                "gland/false_positive_frames"]
    assert list(result)[-1] == "score"


def test_a_change_on_every_patient_but_one_is_better_where_the_unpaired_intervals_overlap():
    baseline, candidate = table(), changed(FRAMES, GLAND_BETTER_ALMOST_EVERYWHERE)
    gland = quantities(baseline, candidate)["gland/dice"]
    assert gland["baseline"] == pytest.approx(4.0 / 6)
    assert gland["difference"] == pytest.approx(0.02 * 4 / 6)  # 4 of the 6 scored frames gain 0.02
    low, high = gland["interval"]
    assert 0 < low <= gland["difference"] <= high <= 0.02 and gland["verdict"] == "better"
    unpaired = [cv_report(folds(t), CLASSES, RESAMPLES, 0.95, 0)["classes"]["gland"]["interval"]["dice"]
                for t in (baseline, candidate)]
    assert unpaired[1][0] < unpaired[0][1]  # each report's own interval: they overlap, the change does not show


def test_swapping_the_two_negates_the_difference_and_its_interval():
    forward = quantities(table(), changed(FRAMES, GLAND_BETTER_ALMOST_EVERYWHERE))["gland/dice"]
    backward = quantities(changed(FRAMES, GLAND_BETTER_ALMOST_EVERYWHERE), table())["gland/dice"]
    assert backward["difference"] == pytest.approx(-forward["difference"])
    assert backward["interval"] == pytest.approx([-forward["interval"][1], -forward["interval"][0]])
    assert backward["verdict"] == "worse"


def test_one_patient_of_four_changing_is_unclear_and_counts_are_differences_of_frames():
    result = quantities(table(), changed(FRAMES, WITHOUT_B_INVENTED_LESION))
    lesion, false_positives = result["lesion/dice"], result["lesion/false_positive_frames"]
    assert (lesion["baseline"], lesion["candidate"]) == pytest.approx((0.5 / 3, 0.5 / 2))  # b1 no longer scored
    assert (false_positives["baseline"], false_positives["candidate"], false_positives["difference"]) == (1, 0, -1)
    assert false_positives["higher_is_better"] is False
    # resamples without patient B change nothing, so the interval reaches 0
    assert false_positives["interval"][1] == 0 and false_positives["verdict"] == "unclear"
    assert lesion["interval"][0] == 0 and lesion["verdict"] == "unclear"
    assert result["gland/dice"]["difference"] == 0


def test_distances_are_in_mm_only_when_both_evaluations_have_a_spacing():
    closer = {("c1", "lesion"): (10, 10, 5, 1.0, 0.5)}  # the lesion's HD95 2 px -> 1 px, ASSD 1 -> 0.5
    in_mm = compare(table(), changed(FRAMES, closer), list(CLASSES), 50, 0.95, 0)
    assert in_mm["distance_unit"] == "mm"
    assert in_mm["quantities"]["lesion/hd95"]["difference"] == pytest.approx(-0.5)  # 0.5 mm per px
    assert in_mm["quantities"]["lesion/assd"]["difference"] == pytest.approx(-0.25)
    without_spacing = table(mm_per_px=None)
    in_px = compare(without_spacing, changed(FRAMES, closer), list(CLASSES), 50, 0.95, 0)
    assert in_px["distance_unit"] == "px" and in_px["quantities"]["lesion/hd95"]["difference"] == pytest.approx(-1.0)


def test_the_same_seed_gives_the_same_report():
    baseline, candidate = table(), changed(FRAMES, GLAND_BETTER_ALMOST_EVERYWHERE)
    assert quantities(baseline, candidate, seed=3) == quantities(baseline, candidate, seed=3)


@pytest.mark.parametrize(("value", "digits", "shown"), [
    (0.0123, 3, "+0.012"), (-0.5, 0, "-0.5"), (-2.0, 0, "-2"), (0.0, 3, "+0.000"), (0.0002, 3, "+0.0002"), (-0.00004, 3, "-0.00004"),
    (3.0, 0, "+3"), (0.4, 0, "+0.4"),
])
def test_an_interval_end_that_is_not_zero_is_never_shown_as_zero(value: float, digits: int, shown: str):
    assert _bound(value, digits) == shown


@pytest.mark.parametrize(("key", "interval", "expected"), [
    ("gland/dice", [0.01, 0.02], "better"), ("gland/dice", [-0.02, -0.01], "worse"),
    ("gland/dice", [-0.01, 0.02], "unclear"), ("gland/dice", [0.0, 0.02], "unclear"),
    ("lesion/hd95", [-2.0, -1.0], "better"), ("lesion/false_positive_frames", [1.0, 3.0], "worse"),
    ("score", [0.001, 0.002], "better"), ("lesion/assd", None, "unclear"),
])
def test_verdict_follows_the_direction_of_the_metric(key: str, interval, expected: str):
    assert verdict(key, interval) == expected


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t[t["frame_id"] != "c1"], r"1 missing \(c1\)"),
    (lambda t: pd.concat([t, t.iloc[[0]]]), "a1 is scored twice"),
    (lambda t: t.assign(patient=t["patient"].where(t["frame_id"] != "d2", "E")), "frame d2 belongs to patient E"),
])
def test_evaluations_of_different_frames_are_refused(edit, message: str):
    with pytest.raises(ValueError, match=message):
        check_paired(table(), edit(table()), ("base.csv", "candidate.csv"))


def test_check_paired_gives_the_classes_in_the_baselines_order():
    assert check_paired(table(), table().iloc[::-1], ("a", "b")) == ["gland", "lesion"]


def write_folds(root: Path, per_frame: pd.DataFrame) -> Path:
    for fold, rows in folds(per_frame).items():
        (root / str(fold)).mkdir(parents=True)
        rows.to_csv(root / str(fold) / "per_frame.csv", index=False)
    return root


def test_a_folds_folder_is_read_as_the_pooled_out_of_fold_table(tmp_path: Path):
    pooled = read_evaluation(write_folds(tmp_path / "folds", table()))
    assert sorted(pooled["frame_id"].unique()) == sorted(frame for frame, *_ in FRAMES)
    assert list(pooled["fold"].unique()) == [0, 1] and len(pooled) == 2 * len(FRAMES)


@pytest.mark.parametrize(("make", "message"), [
    (lambda root: root / "nowhere", "nowhere: no such file or folder"),
    (lambda root: root, "no <fold>/per_frame.csv inside"),
    (lambda root: _write(root / "x.csv", "frame_id,patient\n1,A\n"), "x.csv: not the evaluate stage's per_frame.csv "
                                                                      r"\(no column class, truth_px"),
    (lambda root: _write(root / "y.csv", ""), "y.csv: not a readable per-frame table"),
    (lambda root: _without_patient(table(), "c1", root / "z.csv"),
     "z.csv: 2 row\\(s\\) without a patient, 1 frame\\(s\\) \\(c1\\); every row needs its patient"),
    (lambda root: _without_patient(table(), "a2", root / "folds" / "0" / "per_frame.csv").parents[1],
     "0/per_frame.csv: 2 row\\(s\\) without a patient, 1 frame\\(s\\) \\(a2\\)"),
])
def test_unreadable_evaluations_are_refused_naming_the_path(tmp_path: Path, make, message: str):
    with pytest.raises(ValueError, match=message):
        read_evaluation(make(tmp_path))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _without_patient(rows: pd.DataFrame, frame: str, path: Path) -> Path:
    """``rows`` written to ``path`` with an empty patient cell on ``frame``'s rows (a hand edit the pipeline never makes)."""
    rows.loc[rows["frame_id"] == frame, "patient"] = ""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(path, index=False)
    return path


def test_patients_in_two_folds_are_refused(tmp_path: Path):
    root = write_folds(tmp_path / "folds", table())
    table().to_csv(root / "0" / "per_frame.csv", index=False)  # fold 0 now also scores fold 1's patients
    with pytest.raises(ValueError, match="folds: patient\\(s\\) C, D scored in more than one fold"):
        read_evaluation(root)


def test_markdown_shows_each_quantity_with_its_direction_and_interval():
    report = compare(table(), changed(FRAMES, GLAND_BETTER_ALMOST_EVERYWHERE), list(CLASSES), 200, 0.9, 0)
    text = markdown(report, ("base", "cand"))
    gland = report["quantities"]["gland/dice"]
    assert "baseline base, candidate cand" in text and "90% intervals" in text and "200 resamples" in text
    assert (f"| gland dice | higher | 0.667 | 0.680 | +0.013 [{gland['interval'][0]:+.3f}, "
            f"{gland['interval'][1]:+.3f}] | better |") in text
    assert "| lesion false positive frames | lower | 1 | 1 | +0 [+0, +0] | unclear |" in text
    assert "| gland hd95 (mm) | lower |" in text


def test_the_command_prints_the_table_and_writes_json_only_where_allowed(tmp_path: Path):
    base = write_folds(tmp_path / "base", table())
    cand = write_folds(tmp_path / "cand", changed(FRAMES, GLAND_BETTER_ALMOST_EVERYWHERE))
    runner = CliRunner()
    out = tmp_path / "compare.json"
    result = runner.invoke(app, ["compare", str(base), str(cand), "--resamples", "100", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "| gland dice | higher | 0.667 | 0.680 |" in result.stdout
    written = json.loads(out.read_text())
    assert written["baseline"] == str(base) and written["quantities"]["gland/dice"]["verdict"] == "better"
    assert written["bootstrap"] == {"unit": "patient", "paired": True, "resamples": 100, "seed": 0,
                                    "confidence": 0.95, "interval": "percentile"}

    again = runner.invoke(app, ["compare", str(base), str(cand), "--resamples", "100", "--json", str(out)])
    assert again.exit_code == 2 and "compare.json exists" in again.output
    replaced = runner.invoke(app, ["compare", str(cand), str(base), "--resamples", "100", "--json", str(out), "--force"])
    assert replaced.exit_code == 0 and json.loads(out.read_text())["baseline"] == str(cand)

    notes = _write(tmp_path / "notes.json", '{"mine": 1}')
    refused = runner.invoke(app, ["compare", str(base), str(cand), "--json", str(notes), "--force"])
    assert refused.exit_code == 2 and "not a trus compare report" in refused.output
    assert notes.read_text() == '{"mine": 1}'


def test_the_command_refuses_evaluations_of_different_frames_in_one_line(tmp_path: Path):
    base = write_folds(tmp_path / "base", table())
    other = tmp_path / "other.csv"
    table()[lambda t: t["patient"] != "A"].to_csv(other, index=False)
    result = CliRunner().invoke(app, ["compare", str(base), str(other), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and "other.csv does not score the frames and classes" in result.output
    assert "2 missing (a1, a2)" in result.output and not (tmp_path / "r.json").exists()
    assert len(result.output.strip().splitlines()) == 1



def test_the_evaluate_stages_rows_have_every_column_the_comparison_reads():
    truth = np.zeros((2, 8, 8), bool)
    truth[0, 2:6, 2:6] = True
    predicted = truth.copy()
    predicted[1, 0, 0] = True  # an invented lesion pixel
    rows = pd.DataFrame(frame_rows("f1", "P1", predicted, truth, CLASSES, (0.5, 0.5)))
    assert set(REQUIRED_COLUMNS) <= set(rows.columns)
    result = compare(rows, rows, list(CLASSES), 10, 0.95, 0)["quantities"]
    assert result["lesion/false_positive_frames"]["baseline"] == 1 and result["gland/dice"]["baseline"] == 1.0
