"""The throughput benchmark (benchmarks/segment_throughput.py) runs, and its ``--true-masks`` hands the pipeline the
frames' true masks in place of the network's output. On the tests' tiny threshold model (tests/tiny_models.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.imaging.frames import read_frame
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.predictor import Segmenter
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
