"""benchmarks/seed_spread.py: several experiments' test and out-of-distribution reports side by side, by hand and
on real ``dvc exp run`` experiments in a temporary git + DVC repository."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import DVC_CONFIG, PROJECT_ROOT, run_checked

BENCHMARKS = PROJECT_ROOT / "benchmarks"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def seed_spread(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import seed_spread

    return seed_spread


def reports(test_gland: float, test_lesion: float | None, variants: dict[str, tuple[float, int, float | None]]
            ) -> tuple[dict, dict]:
    """(metrics.json, ood.json) shaped as the evaluate and ood stages write them; a variant is (gland Dice, false
    glands, lesion Dice)."""
    test = {"test": {"gland": {"dice": test_gland, "false_positive_frames": 0},
                     "lesion": {"dice": test_lesion, "false_positive_frames": 3}}}
    ood = {"variants": {name: {"gland": {"dice": gland, "false_positive_frames": false},
                               "lesion": {"dice": lesion, "false_positive_frames": 9}}
                        for name, (gland, false, lesion) in variants.items()}}
    return test, ood


@pytest.mark.parametrize(("allowance", "variants", "within"), [
    (0.05, {"default": (0.97, 0, 0.2), "wide": (0.90, 2, 0.1)}, 1),   # wide is 0.06 below the test's 0.96
    (0.05, {"default": (0.97, 0, 0.2), "wide": (0.91, 2, 0.1)}, 2),   # exactly 0.05 below still counts
    (0.10, {"default": (0.97, 0, 0.2), "wide": (0.90, 2, 0.1)}, 2),
    (0.05, {}, 0),
])
def test_one_experiments_figures(seed_spread, allowance: float, variants: dict, within: int):
    test, ood = reports(0.96, 0.5, variants)
    figures = seed_spread.experiment_figures(test, ood, allowance)
    assert figures["test gland Dice"] == 0.96 and figures["test lesion Dice"] == 0.5
    assert figures["test gland false frames"] == 0 and figures["test lesion false frames"] == 3
    for name, (gland, false, lesion) in variants.items():
        assert figures[f"{name} gland Dice"] == gland
        assert figures[f"{name} gland minus test"] == pytest.approx(gland - 0.96)
        assert figures[f"{name} false glands"] == false
        assert figures[f"{name} lesion Dice"] == lesion
    assert figures[f"variants within {allowance:g}"] == within
    assert len(figures) == 4 + 4 * len(variants) + 1


def test_the_gland_where_present_rows(seed_spread):
    test, ood = reports(0.96, 0.5, {"default": (0.97, 0, 0.2), "wide": (0.90, 2, 0.1)})
    figures = seed_spread.experiment_figures(test, ood, where_present={"wide": 0.95})
    assert figures["wide gland where present"] == 0.95 and math.isnan(figures["default gland where present"])
    assert list(figures).index("wide gland where present") == list(figures).index("wide gland minus test") + 1


def test_gland_dice_over_the_frames_that_show_one(seed_spread):
    per_frame = pd.DataFrame({"variant": ["wide", "wide", "wide", "wide", "jpeg", "jpeg"],
                              "class": ["gland", "lesion", "gland", "gland", "gland", "gland"],
                              "dice": [0.9, 0.1, 0.0, 0.8, 0.0, 0.97],
                              "truth_px": [40, 5, 0, 30, 0, 20]})
    assert seed_spread.gland_dice_where_present(per_frame) == pytest.approx({"wide": 0.85, "jpeg": 0.97})
    with pytest.raises(seed_spread.ExperimentError, match="no column truth_px"):
        seed_spread.gland_dice_where_present(per_frame.drop(columns="truth_px"))


def test_an_undefined_dice_is_nan(seed_spread):
    figures = seed_spread.experiment_figures(*reports(0.96, None, {"wide": (0.9, 0, None)}))
    assert math.isnan(figures["test lesion Dice"]) and math.isnan(figures["wide lesion Dice"])


@pytest.mark.parametrize(("test", "ood", "message"), [
    ({"test": {"lesion": {"dice": 0.5}}}, {"variants": {}}, "no 'gland' under 'test'"),
    ({}, {"variants": {}}, "no 'gland' under 'test'"),
    ({"test": {"gland": {"dice": 0.9}, "lesion": {"dice": 0.5}}}, {"variants": {"wide": {"gland": {"dice": 0.9}}}},
     "variant 'wide' has no 'lesion'"),
])
def test_malformed_reports_are_refused(seed_spread, test: dict, ood: dict, message: str):
    with pytest.raises(seed_spread.ExperimentError, match=message):
        seed_spread.experiment_figures(test, ood)


@pytest.mark.parametrize(("params", "reported", "order"), [
    ("ood:\n  variants: [default, wide, jpeg]\n", ["jpeg", "wide", "default"], ["default", "wide", "jpeg"]),
    ("ood:\n  variants: [wide, default]\n", ["colour", "default", "wide"], ["wide", "default", "colour"]),
    ("ood:\n  variants: [default, wide]\n", ["wide"], ["wide"]),
    ("train:\n  seed: 1\n", ["wide", "default"], ["wide", "default"]),
    ("", ["wide", "default"], ["wide", "default"]),
])
def test_variants_in_the_params_order(seed_spread, params: str, reported: list[str], order: list[str]):
    assert seed_spread.variant_order(params, reported) == order


def test_counts_print_without_decimals(seed_spread):
    rows = ("wide gland Dice", "wide false glands", "variants within 0.05")
    table = seed_spread.spread_table({"a": dict(zip(rows, (0.9, 1.0, 9.0))), "b": dict(zip(rows, (0.8, 2.0, 7.0)))})
    text = seed_spread.formatted(table)
    assert text.loc["wide gland Dice"].tolist() == ["0.900", "0.800", "0.850", "0.071", "0.800", "0.900"]
    assert text.loc["wide false glands"].tolist() == ["1", "2", "1.50", "0.71", "1", "2"]
    assert text.loc["variants within 0.05"].tolist() == ["9", "7", "8.00", "1.41", "7", "9"]


def test_the_spread_table_by_hand(seed_spread):
    table = seed_spread.spread_table({"a": {"x": 1.0, "y": 0.5}, "b": {"x": 3.0, "y": 0.7}, "c": {"x": 2.0}})
    assert list(table.columns) == ["a", "b", "c", "mean", "sd", "min", "max"]
    assert list(table.index) == ["x", "y"]
    assert table.loc["x", ["mean", "sd", "min", "max"]].tolist() == pytest.approx([2.0, 1.0, 1.0, 3.0])
    assert math.isnan(table.loc["y", "c"])  # c lacks y: NaN there, left out of y's summary
    assert table.loc["y", ["mean", "min", "max"]].tolist() == pytest.approx([0.6, 0.5, 0.7])
    assert table.loc["y", "sd"] == pytest.approx(math.sqrt(0.02))


def test_a_folder_that_is_not_a_dvc_project_is_one_line(tmp_path: Path, seed_spread,
                                                         capsys: pytest.CaptureFixture[str]):
    assert seed_spread.main(["seed0", "--repo", str(tmp_path)]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"seed_spread: {tmp_path}: ") and "\n" not in error


WRITE_REPORTS = """\
import json, pathlib, yaml
seed = yaml.safe_load(open("params.yaml"))["train"]["seed"]
pathlib.Path("reports").mkdir(exist_ok=True)
json.dump({"test": {"gland": {"dice": 0.9 + seed / 100, "false_positive_frames": 0},
                    "lesion": {"dice": 0.1 * seed, "false_positive_frames": seed}}},
          open("reports/metrics.json", "w"))
json.dump({"variants": {"wide": {"gland": {"dice": 0.9 - seed / 50, "false_positive_frames": seed},
                                 "lesion": {"dice": None, "false_positive_frames": 0}},
                        "default": {"gland": {"dice": 0.95, "false_positive_frames": 0},
                                    "lesion": {"dice": 0.2, "false_positive_frames": 1}}}},
          open("reports/ood.json", "w"), sort_keys=True)
open("reports/ood_per_frame.csv", "w").write(
    "variant,frame_id,class,dice,truth_px\\n"
    f"wide,a,gland,{0.9 + seed / 100},50\\nwide,a,lesion,0.5,9\\nwide,b,gland,0.0,0\\nwide,b,lesion,0.0,0\\n"
    "default,a,gland,0.95,50\\n")
"""


def test_real_experiments_side_by_side(tmp_path: Path, seed_spread, capsys: pytest.CaptureFixture[str]):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "write_reports.py").write_text(WRITE_REPORTS)
    (root / "params.yaml").write_text(yaml.safe_dump({"train": {"seed": 0}, "ood": {"variants": ["default", "wide"]}}))
    stage = {"cmd": "python write_reports.py", "deps": ["write_reports.py"], "params": ["train.seed"],
             "metrics": [{"reports/metrics.json": {"cache": False}}, {"reports/ood.json": {"cache": False}}],
             "outs": [{"reports/ood_per_frame.csv": {"cache": False}}]}
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"evaluate": stage}}))
    run_checked(["git", "init", "-q"], root, VENV_BIN)
    run_checked(["dvc", "init", "-q"], root, VENV_BIN, DVC_NO_ANALYTICS="1")
    shutil.copy2(PROJECT_ROOT / DVC_CONFIG, root / DVC_CONFIG)
    run_checked(["git", "add", "."], root, VENV_BIN)
    run_checked(["git", "commit", "-qm", "reports from the seed"], root, VENV_BIN)
    for seed in (1, 2):
        run_checked(["dvc", "exp", "run", "-n", f"seed{seed}", "-S", f"train.seed={seed}"], root, VENV_BIN)
    workspace = {path: (root / path).read_text() for path in ("params.yaml", "reports/metrics.json")}

    assert seed_spread.main(["seed1", "seed2", "--repo", str(root)]) == 0
    rows = [line.rsplit(None, 6) for line in capsys.readouterr().out.splitlines()[2:]]  # name, 2 runs, 4 summaries
    lines = {row[0].strip(): row[1:] for row in rows}
    assert lines["test gland Dice"] == ["0.910", "0.920", "0.915", "0.007", "0.910", "0.920"]
    assert lines["wide gland minus test"][:2] == ["-0.030", "-0.060"]  # 0.88 - 0.91, 0.86 - 0.92
    assert lines["wide false glands"] == ["1", "2", "1.50", "0.71", "1", "2"]
    assert lines["wide lesion Dice"] == ["-"] * 6
    assert lines["variants within 0.05"][:2] == ["2", "1"]  # default both times, wide with seed 1 only
    assert lines["wide gland where present"][:2] == ["0.910", "0.920"]  # frame b has no gland
    per_variant = ("gland Dice", "gland minus test", "gland where present", "false glands", "lesion Dice")
    assert list(lines)[4:] == [f"{variant} {row}" for variant in ("default", "wide") for row in per_variant] + [
        "variants within 0.05"]  # params.yaml's order, not the report's (sorted) one
    assert {path: (root / path).read_text() for path in workspace} == workspace  # the working tree is not touched

    with pytest.raises(seed_spread.ExperimentError, match="reports/ood.json at HEAD: not in the commit"):
        seed_spread.read_report(root, "HEAD", "reports/ood.json")  # the commit before any experiment
    assert seed_spread.main(["seed1", "seed7", "--repo", str(root)]) == 1
    error = capsys.readouterr().err
    assert "no experiment named seed7" in error and "seed1, seed2" in error
