"""The throughput benchmark (benchmarks/segment_throughput.py) runs, and its ``--true-masks`` hands the pipeline the
frames' true masks in place of the network's output; the review-flag benchmark (benchmarks/review_flags.py) runs on the
ood stage's frames by default and prints whole tables. On the tests' tiny threshold model (tests/tiny_models.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.config import OodParams, load_params
from pipeline.imaging.fan import detect_fan
from pipeline.imaging.frames import read_frame
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.predictor import Segmenter
from pipeline.synthetic import SampleSpec, write_sample_export
from tests.conftest import PROJECT_ROOT
from tests.tiny_models import tiny_contract, write_threshold_model

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
GRID_SPEC = PreprocessSpec(crop="none", size=256, resize="letterbox", interpolation="area",
                           filter=FilterSpec(method="none"))


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_true_masks_stand_in_for_the_network_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_frames
    import segment_throughput

    paths = bench_frames.write_grey_frames(tmp_path / "in", 2)
    segmenter = Segmenter(write_threshold_model(tmp_path / "m.onnx", tiny_contract(GRID_SPEC)))
    gray = read_frame(paths[1]).gray
    own = segmenter.segment(gray).masks(0.5)
    segment_throughput.give_true_masks(segmenter, paths)
    for index, path in enumerate(paths):
        phantom = bench_frames.render_frame(index)
        gland, lesion = segmenter.segment(read_frame(path).gray).masks(0.5)
        assert dice(gland, phantom.gland_mask) > 0.97
        if index == 0:
            assert phantom.lesion_mask.any() and dice(lesion, phantom.lesion_mask) > 0.9
        else:
            assert not phantom.lesion_mask.any() and not lesion.any()
    assert dice(own[0], bench_frames.render_frame(1).gland_mask) < 0.5  # the model's own output is another mask
    with pytest.raises(KeyError):  # a frame that is not one of the benchmark's
        segmenter.segment(np.zeros_like(gray))


def test_the_throughput_benchmark_runs_and_prints_every_row(tmp_path: Path):
    model = write_threshold_model(tmp_path / "m.onnx", tiny_contract(GRID_SPEC))
    result = subprocess.run([sys.executable, "segment_throughput.py", "--model", str(model), "--frames", "3",
                             "--repeats", "1", "--true-masks"], cwd=BENCHMARKS, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    rows = {line[:36].strip(): line[36:].split() for line in result.stdout.splitlines()
            if line.startswith(("network alone", "--workers"))}
    assert [name.split(" (")[0] for name in rows] == ["network alone", "--workers 1 --streams 1",
                                                      "--workers 2 --streams 1", "--workers 2 --streams 2"]
    network_fps = float(rows["network alone (run_processed)"][0])
    for values in rows.values():
        frames_per_second, ms_per_frame, share = float(values[0]), float(values[1]), values[2]
        assert frames_per_second > 0 and ms_per_frame == pytest.approx(1e3 / frames_per_second, rel=0.02, abs=0.06)
        assert share.endswith("%") and abs(int(share[:-1]) - 100 * frames_per_second / network_fps) <= 1
    assert "the pipeline gets the true masks" in result.stdout


def test_the_review_flag_benchmark_defaults_to_the_ood_stage_frames(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import review_flags

    ood = OodParams(variants=("default", "wide"), patients=3, frames_per_patient=4, seed=7)
    args = review_flags.parse_args([], ood)
    assert (args.variants, args.patients, args.frames, args.seed) == (["default", "wide"], 3, 4, 7)
    args = review_flags.parse_args(["--variants", "jpeg", "--patients", "1", "--frames", "2", "--seed", "5"], ood)
    assert (args.variants, args.patients, args.frames, args.seed) == (["jpeg"], 1, 2, 5)


def test_the_review_flag_benchmark_prints_every_column(tmp_path: Path):
    model = write_threshold_model(tmp_path / "m.onnx", tiny_contract(GRID_SPEC))
    result = subprocess.run([sys.executable, str(BENCHMARKS / "review_flags.py"), "--model", str(model),
                             "--variants", "default", "wide", "--patients", "1", "--frames", "3", "--seed", "5"],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "..." not in result.stdout  # in a terminal, pandas elides the columns of a table wider than it
    header = lines[1].split()  # "flag <reasons...> All": the first table's columns
    assert header[0] == "flag" and header[-1] == "All" and len(header) >= 3
    totals = {line.split()[0]: int(line.split()[-1]) for line in lines if line.startswith(("default", "wide", "All"))}
    assert totals == {"default": 3, "wide": 3, "All": 6}
    assert lines[-2].startswith("Spearman (border uncertainty, gland Dice) on ")
    diameters = lines[-1].removeprefix("median true gland diameter on the network's grid, px: ").split(", ")
    assert [entry.split()[0] for entry in diameters] == ["default", "wide"]
    # the same patients' glands: a wider fan puts more tissue across the grid, so the gland is drawn smaller
    assert 0 < int(diameters[1].split()[1]) < int(diameters[0].split()[1]) < 256


# variant, truth's gland Dice (None: no gland in the truth), gland predicted, border uncertainty
GATE_FRAMES = [("a", 0.9, True, 0.3), ("a", 0.8, True, 0.7), ("a", None, True, 0.6), ("a", None, False, None),
               ("b", 0.0, False, None), ("b", 0.95, True, 0.2)]


@pytest.mark.parametrize(("area", "diameter"), [(math.pi, 2.0), (100 * math.pi, 20.0), (0.0, 0.0)])
def test_equivalent_diameter(area: float, diameter: float, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import review_flags

    assert review_flags.equivalent_diameter(area) == pytest.approx(diameter)


@pytest.mark.parametrize(("limit", "expected"), [
    (None, {"a": (0.9 + 0.8 + 0.0) / 3, "b": (0.0 + 0.95) / 2}),  # the false gland of "a" scores 0
    (0.65, {"a": (0.9 + 0.0 + 0.0) / 3, "b": (0.0 + 0.95) / 2}),  # its true gland at 0.7 dropped (0), the false kept
    (0.5, {"a": (0.9 + 0.0) / 2, "b": (0.0 + 0.95) / 2}),  # both dropped: the false gland's frame is no longer scored
    (0.1, {"a": 0.0, "b": 0.0}),  # every gland dropped: the true ones score 0, the false one drops out
])
def test_gating_glands_on_their_border_uncertainty(limit: float | None, expected: dict[str, float],
                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import review_flags

    table = pd.DataFrame(GATE_FRAMES, columns=["variant", "dice", "predicted", "uncertainty"]).astype(
        {"dice": float, "uncertainty": float})
    assert review_flags.gated_gland_dice(table, limit).to_dict() == pytest.approx(expected)


@pytest.mark.parametrize(("scores", "present", "expected"), [
    ([0.9, 0.4, 0.2, 0.6], [True, True, False, False],  # pairs above: 0.9>0.2, 0.9>0.6, 0.4>0.2; 0.4<0.6
     "AUC 0.750  gland frames < 0.5:   1  gland-free frames >= 0.5:   1"),
    ([0.7, 0.8, 0.1], [True, True, False], "AUC 1.000  gland frames < 0.5:   0  gland-free frames >= 0.5:   0"),
    ([0.7, 0.3], [True, True], "AUC n/a  gland frames < 0.5:   1  gland-free frames >= 0.5:   0"),
])
def test_the_presence_benchmark_scores_a_set(scores: list[float], present: list[bool], expected: str,
                                             monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gland_presence

    line = gland_presence.score_line("set", np.array(scores), np.array(present))
    assert line.endswith(expected)
    assert f"frames {len(scores):4d}  without a gland {present.count(False):3d}" in line


def test_the_presence_classifier_learns_a_separable_set(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gland_presence

    rng = np.random.default_rng(0)
    images = rng.integers(20, 60, (12, 64, 64), dtype=np.uint8)  # dim mottled frames
    present = np.arange(12) % 2 == 0
    images[present, 20:44, 20:44] = 220  # a bright square stands for the gland
    network = gland_presence.train_presence(images, present, load_params(PROJECT_ROOT / "params.yaml").train.augment,
                                            0.45, 0.23, epochs=30, seed=0)
    scores = gland_presence.presence_scores(network, images, 0.45, 0.23)
    assert scores.shape == (12,) and ((scores >= 0) & (scores <= 1)).all()
    assert scores[present].min() > scores[~present].max()


def test_the_presence_benchmark_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.chdir(PROJECT_ROOT)  # params.yaml: the augmentations and the ood stage's frames
    import gland_presence

    export = tmp_path / "export"
    write_sample_export(export, 3, SampleSpec(n_patients=2, frames_per_patient=4, empty_fraction=0.25))
    model = write_threshold_model(tmp_path / "m.onnx", tiny_contract(replace(GRID_SPEC, size=64)))
    gland_presence.main(["--data", str(export), "--model", str(model), "--seeds", "0", "--epochs", "1",
                         "--test-patients", "1", "--test-frames", "2", "--variants", "default"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"training frames: 8 from {export}, 2 without a gland"
    assert lines[1] == "seed 0 (1 epochs):"
    assert [line.split()[0] for line in lines[2:]] == ["seed", "default"]
    assert "frames    2" in lines[2] and "frames   50" in lines[3]  # the ood stage's 10 x 5 frames


@pytest.mark.parametrize(("fan_box", "probe_top", "spacing", "target", "expected"), [
    ((400, 100, 400, 300), True, 0.2, 0.2, (472, 100, 256, 256)),  # 256 frame px of 0.2 mm on 256 grid px of 0.2 mm
    ((400, 100, 400, 300), False, 0.2, 0.2, (472, 144, 256, 256)),  # the probe at the bottom: the box ends there
    ((400, 100, 400, 300), True, 0.1, 0.4, (88, 100, 1024, 772)),  # 4 frame px per grid px: 1024 px, clipped below
    ((100, 50, 400, 300), True, 0.1, 0.4, (0, 50, 1024, 822)),  # and on the left
])
def test_the_physical_crop_holds_the_target_mm_per_grid_px(fan_box, probe_top: bool, spacing: float, target: float,
                                                            expected, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import physical_scale

    assert physical_scale.physical_box(fan_box, probe_top, spacing, target, 256, 1280, 872) == expected


@pytest.mark.parametrize("probe_top", [True, False])
def test_the_probe_edge_is_where_the_fan_narrows(probe_top: bool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import physical_scale

    frame = np.zeros((300, 400), np.uint8)
    apex, base = (200, 20), [(40, 280), (360, 280)]  # a sector narrowing to the probe
    points = np.array([apex, *base], np.int32)
    cv2.fillPoly(frame, [points], 128)
    frame = frame if probe_top else frame[::-1].copy()
    assert physical_scale.probe_at_top(detect_fan(frame)) is probe_top


def test_the_physical_scale_benchmark_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.chdir(PROJECT_ROOT)  # params.yaml: the ood stage's frames
    import physical_scale

    export = tmp_path / "export"
    write_sample_export(export, 3, SampleSpec(n_patients=1, frames_per_patient=3))
    model = write_threshold_model(tmp_path / "m.onnx", tiny_contract(replace(GRID_SPEC, size=64, crop="auto")))
    physical_scale.main(["--data", str(export), "--model", str(model), "--variants", "default", "wide"])
    lines = capsys.readouterr().out.splitlines()
    target = float(lines[0].split()[1])
    assert lines[0] == f"target: {target:.4f} mm per grid px (the median fan-fit of {export})"
    assert 0.1 < target < 5.0  # a frame's fan of several cm over 64 grid px
    assert lines[1].split() == ["gland", "Dice", "with", "a", "gland", "false", "glands"]
    assert [line.split()[0] for line in lines[4:]] == ["default", "wide"]
    for line in lines[4:]:
        dice_fit, dice_physical, *_ = (float(value) for value in line.split()[1:])
        assert 0.0 <= dice_fit <= 1.0 and 0.0 <= dice_physical <= 1.0
