"""The out-of-distribution check: the report from per-frame rows with known values, scoring an export exactly as
the app segments a frame, and the ``ood`` stage as a subprocess with a tiny ONNX model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.config import DataParams, OodParams, ParamsError, build
from pipeline.evaluation.metrics import score_masks
from pipeline.files.tables import read_table
from pipeline.evaluation.ood import (GENERATOR_CLASSES, VariantRun, check_ood_request, ood_report, plot_table,
                                     score_export)
from pipeline.imaging.frames import read_frame
from pipeline.inference.predictor import Segmenter
from pipeline.ingest.coco import read_coco_export
from pipeline.planes import PLANES
from pipeline.synthetic import SampleSpec, write_sample_export
from tests.conftest import PROJECT_ROOT, child_environment
from tests.tiny_models import write_threshold_model

CLASSES = ("gland", "lesion")


def rows(frame: str, gland: tuple[int, int, int], lesion: tuple[int, int, int], plane: str = "transverse",
         predicted_plane: str = "") -> list[dict]:
    """A frame's two score rows from (truth, predicted, intersection) pixel counts, Dice filled in, with its
    plane and the model's (``""``: a model without a plane output)."""
    out = []
    for name, (truth, predicted, both) in (("gland", gland), ("lesion", lesion)):
        dice = 2 * both / (truth + predicted) if truth + predicted else float("nan")
        out.append({"frame_id": frame, "patient": "P001", "class": name, "dice": dice, "iou": float("nan"),
                    "hd95_px": float("nan"), "hd95_mm": float("nan"), "assd_px": float("nan"),
                    "assd_mm": float("nan"), "truth_px": truth, "predicted_px": predicted, "intersection_px": both,
                    "plane": plane, "predicted_plane": predicted_plane})
    return out


# gland Dice 0.8 and 0.6 (mean 0.7); lesion: one frame Dice 0.5, one missed (0) -> 0.25; planes: 1 of 2 right
VARIANT_A = pd.DataFrame(rows("a1", (100, 150, 100), (10, 10, 5), "transverse", "transverse")
                         + rows("a2", (100, 100, 60), (10, 0, 0), "sagittal", "transverse"))
# gland Dice 1.0 on both; no lesion anywhere (nothing scored); planes: both right, and a third frame of no known plane
VARIANT_B = pd.DataFrame(rows("b1", (50, 50, 50), (0, 0, 0), "sagittal", "sagittal")
                         + rows("b2", (80, 80, 80), (0, 0, 0), "transverse", "transverse")
                         + rows("b3", (80, 80, 80), (0, 0, 0), "unknown", "sagittal"))
TEST = {"gland": {"dice": 0.9}, "lesion": {"dice": 0.3}}


def test_report_compares_each_variant_with_the_in_distribution_test():
    runs = [VariantRun("wide", VARIANT_A, 0.1, 0.2), VariantRun("jpeg", VARIANT_B, 0.1, 0.2)]
    report = ood_report(runs, CLASSES, TEST, {"seed": 5})
    assert report["seed"] == 5 and report["in_distribution"] == TEST
    assert list(report["variants"]) == ["wide", "jpeg"]
    wide, jpeg = report["variants"]["wide"], report["variants"]["jpeg"]
    assert (wide["frames"], jpeg["frames"]) == (2, 3)
    assert (wide["plane_accuracy"], wide["plane_frames"]) == (0.5, 2)
    assert (jpeg["plane_accuracy"], jpeg["plane_frames"]) == (1.0, 2)
    assert report["worst"]["plane"] == {"variant": "wide", "plane_accuracy": 0.5}
    assert (wide["gland"]["dice"], wide["gland"]["dice_minus_test"]) == pytest.approx((0.7, -0.2))
    assert (wide["lesion"]["dice"], wide["lesion"]["dice_minus_test"]) == pytest.approx((0.25, -0.05))
    assert (wide["lesion"]["frames_with_class"], wide["lesion"]["missed_frames"]) == (2, 1)
    assert (jpeg["gland"]["dice"], jpeg["gland"]["dice_minus_test"]) == pytest.approx((1.0, 0.1))
    assert report["worst"]["gland"] == {"variant": "wide", "dice": pytest.approx(0.7), "dice_minus_test": -0.2}
    table = plot_table(report, CLASSES)
    assert table.columns.tolist() == ["variant", "gland", "lesion"]
    assert table["variant"].tolist() == ["test (in distribution)", "wide", "jpeg"]
    np.testing.assert_allclose(table[["gland", "lesion"]].to_numpy(float), [[0.9, 0.3], [0.7, 0.25],
                                                                             [1.0, jpeg["lesion"]["dice"]]])


def test_a_model_without_a_plane_output_has_no_plane_accuracy():
    without = VARIANT_A.assign(predicted_plane="")
    report = ood_report([VariantRun("wide", without, 0.0, 0.0)], CLASSES, TEST, {})
    assert (report["variants"]["wide"]["plane_accuracy"], report["variants"]["wide"]["plane_frames"]) == (None, None)
    assert "plane" not in report["worst"]


def test_a_missing_test_figure_leaves_the_difference_empty():
    report = ood_report([VariantRun("wide", VARIANT_A, 0.0, 0.0)], CLASSES, {"gland": {"dice": None}}, {})
    assert report["variants"]["wide"]["gland"]["dice_minus_test"] is None
    assert report["variants"]["wide"]["lesion"]["dice_minus_test"] is None


@pytest.mark.parametrize("variants, classes, message", [
    (["wide", "nokia"], CLASSES, "ood.variants: unknown scanner variant(s) nokia"),
    (["wide"], ("gland", "urethra"), "model.onnx: class(es) urethra are not drawn by the sample generator"),
])
def test_bad_requests_are_refused_with_one_message(variants, classes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_ood_request(variants, classes, Path("models/model.onnx"))
    assert GENERATOR_CLASSES == ("gland", "lesion")


@pytest.mark.parametrize("with_plane", [False, True], ids=["segmentation-only", "plane-output"])
def test_scoring_an_export_is_what_the_app_shows(tmp_path: Path, with_plane: bool):
    model = Segmenter(write_threshold_model(tmp_path / "tiny.onnx", plane=with_plane))
    write_sample_export(tmp_path / "export", 4, SampleSpec(n_patients=2, frames_per_patient=2, variant="probe_bottom"))
    per_frame = score_export(model, tmp_path / "export", DataParams().plane_pattern)
    frames = list(read_coco_export(tmp_path / "export", CLASSES))
    assert len(per_frame) == 2 * len(frames) == 8
    for exported in frames:
        frame = read_frame(exported.image_path)  # the app's reader and call, the contract's threshold
        segmentation = model.segment(frame.gray, frame.region_box)
        shown, truth = segmentation.masks(model.contract.threshold), exported.masks(2)
        plane = exported.name.original_stem.split("_")[-1]  # the generator's names: P001_F02_sagittal.png
        assert plane in PLANES
        for channel, name in enumerate(CLASSES):
            row = per_frame[(per_frame["frame_id"] == exported.name.frame_id) & (per_frame["class"] == name)].iloc[0]
            expected = score_masks(shown[channel], truth[channel])
            assert row["patient"] == exported.name.original_name[:4]
            assert (row["truth_px"], row["predicted_px"]) == (truth[channel].sum(), shown[channel].sum())
            assert row["dice"] == pytest.approx(expected.dice, nan_ok=True)
            assert (row["plane"], row["predicted_plane"]) == (plane, segmentation.plane if with_plane else "")
    assert set(per_frame["plane"]) == set(PLANES)  # 2 frames per patient: one of each plane


@pytest.mark.parametrize("values, message", [
    ({"variants": []}, "ood.variants must be a non-empty list"),
    ({"variants": ["wide", "wide"]}, "ood.variants must be a non-empty list of unique names"),
    ({"patients": 0}, "ood.patients must be in 1..100"),
    ({"seed": -1}, "ood.seed >= 0"),
])
def test_ood_params_are_checked(values: dict, message: str):
    with pytest.raises(ParamsError, match=message):
        build(OodParams, values, "ood")


# The stage, as DVC runs it.

def ood_project(root: Path, variants: list[str]) -> Path:
    """A folder with params.yaml (a small ood section), a tiny model and the evaluate stage's metrics."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["ood"] = {"variants": variants, "patients": 1, "frames_per_patient": 2, "seed": 9}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "models").mkdir(parents=True)
    write_threshold_model(root / "models" / "model.onnx", plane=True)
    (root / "reports").mkdir()
    (root / "reports" / "metrics.json").write_text(json.dumps({"test": TEST}))
    return root


def run_ood(root: Path) -> subprocess.CompletedProcess:
    """``python -m pipeline.stages.ood`` in ``root``, its temporary folders under ``root/tmp``."""
    temporary = root / "tmp"
    temporary.mkdir(exist_ok=True)
    environment = child_environment({"PYTHONPATH": str(PROJECT_ROOT), "TMPDIR": str(temporary)})
    return subprocess.run([sys.executable, "-m", "pipeline.stages.ood"], cwd=root, env=environment,
                          capture_output=True, text=True, timeout=600, check=False)


def test_stage_writes_the_report_and_the_plot_and_leaves_no_frames(tmp_path: Path):
    root = ood_project(tmp_path, ["default", "wide_bottom"])
    result = run_ood(root)
    assert result.returncode == 0, result.stderr
    report = json.loads((root / "reports" / "ood.json").read_text())
    assert (report["seed"], report["patients"], report["frames_per_patient"], report["threshold"]) == (9, 1, 2, 0.5)
    assert list(report["variants"]) == ["default", "wide_bottom"]
    for scores in report["variants"].values():
        assert scores["frames"] == scores["plane_frames"] == 2  # one transverse, one sagittal frame
        assert scores["plane_accuracy"] in (0.0, 0.5, 1.0)
        assert scores["gland"]["dice_minus_test"] == pytest.approx(scores["gland"]["dice"] - 0.9, abs=1e-4)
        assert 0.0 <= scores["gland"]["dice"] <= 1.0
    table = pd.read_csv(root / "reports" / "ood_dice.csv")
    assert table["variant"].tolist() == ["test (in distribution)", "default", "wide_bottom"]
    assert table["gland"].tolist() == pytest.approx([0.9] + [report["variants"][v]["gland"]["dice"]
                                                             for v in ("default", "wide_bottom")])
    rows = read_table(root / "reports" / "ood_per_frame.csv")
    assert rows.columns[0] == "variant" and {"frame_id", "patient", "class", "dice", "truth_px", "predicted_px",
                                             "plane", "predicted_plane"} <= set(rows.columns)
    assert rows.groupby("variant", sort=False).size().to_dict() == {"default": 4, "wide_bottom": 4}  # 2 frames x 2
    for variant, scores in report["variants"].items():  # the report is these rows, summarised
        gland = rows[(rows["variant"] == variant) & (rows["class"] == "gland")]
        assert gland["dice"].mean() == pytest.approx(scores["gland"]["dice"], abs=1e-4)
        assert sorted(gland["plane"]) == ["sagittal", "transverse"]
    assert [name for name in os.listdir(root / "tmp") if name.startswith("trus-ood-")] == []  # frames removed
    line = next(line for line in result.stdout.splitlines() if line.startswith("ood: wide_bottom: gland Dice"))
    assert line.endswith(f", plane accuracy {report['variants']['wide_bottom']['plane_accuracy']:.3f} on 2 frames")


@pytest.mark.parametrize("change, fragment", [
    ("no model", "models/model.onnx: missing; it is written by the 'export' stage"),
    ("bad variant", "ood.variants: unknown scanner variant(s) nokia"),
])
def test_stage_errors_are_one_line(tmp_path: Path, change: str, fragment: str):
    root = ood_project(tmp_path, ["wide", "nokia"] if change == "bad variant" else ["wide"])
    if change == "no model":
        (root / "models" / "model.onnx").unlink()
    result = run_ood(root)
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        line for line in result.stderr.splitlines() if fragment in line]
    assert not (root / "reports" / "ood.json").exists()
