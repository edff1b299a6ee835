"""`trus segment`'s pipeline (pipeline/cli/segment.py): reading, preparing and writing frames on worker threads
while the network runs on one or several frames at once (streams) gives the same outputs, byte for byte, as one
thread; errors stop the threads; the frames in flight stay bounded. On the tests' tiny threshold model
(tests/tiny_models.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import pipeline.cli.segment as segment_module
from pipeline.cli.common import unique_stems
from pipeline.cli.main import app
from pipeline.cli.segment import (AREAS_FILE, PARALLEL_STREAMS, SegmentResult, default_streams, network_threads,
                                  segment_files)
from pipeline.inference.predictor import Segmenter
from pipeline.synthetic import render_phantom
from tests.test_inference import bright_rectangle
from tests.test_measure_cli import write_ultrasound_dicom
from tests.tiny_models import write_threshold_model

CINE_FRAMES = 3


@pytest.fixture
def segmenter(tmp_path: Path) -> Segmenter:
    """The tiny threshold model: 'gland' = brighter than mid-grey, on a 32 px grid."""
    return Segmenter(write_threshold_model(tmp_path / "m.onnx"))


def write_frames(folder: Path, names: list[str]) -> list[Path]:
    """Writes the named frame files into ``folder`` (created) and returns them in that order.

    ``a``/``b``/``c``: bright rectangles of different sizes (PNG, BMP, PNG); ``broken``: a corrupt PNG;
    ``cine``: a 3-frame ultrasound DICOM at 0.2 mm/px; ``scan``: a 640x436 phantom with a depth scale;
    ``f<n>``: rectangles shifted by n px.
    """
    folder.mkdir()
    paths = []
    for name in names:
        if name == "broken":
            path = folder / "broken.png"
            path.write_bytes(b"\x89PNG broken")
        elif name == "cine":
            cine = np.stack([bright_rectangle(60, 90, (5 + 10 * i, 10, 20 + 5 * i, 30)) for i in range(CINE_FRAMES)])
            path = write_ultrasound_dicom(folder / "cine.dcm", cine, (0.2, 0.2))
        elif name == "scan":
            path = folder / "scan.png"
            cv2.imwrite(str(path), render_phantom(np.random.default_rng(4), 640, 436, with_lesion=False).image)
        else:
            path = folder / ("b.bmp" if name == "b" else f"{name}.png")
            shift = int(name[1:]) if name.startswith("f") else 0
            box = {"b": (10, 10, 30, 30), "c": (0, 0, 50, 80)}.get(name, (10 + shift, 20, 20, 30))
            cv2.imwrite(str(path), bright_rectangle(60 if name == "b" else 50, 60 if name == "b" else 80, box))
        paths.append(path)
    return paths


def run(segmenter: Segmenter, files: list[Path], out: Path, workers: int, streams: int = 1,
        **options) -> SegmentResult:
    out.mkdir()
    return segment_files(segmenter, files, out, workers=workers, streams=streams, **options)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("workers, streams", [(2, 1), (3, 1), (1, 2), (2, 2), (2, 3)])
def test_pipelined_outputs_are_byte_identical_to_one_worker(tmp_path: Path, segmenter: Segmenter, workers: int,
                                                            streams: int):
    files = write_frames(tmp_path / "in", ["a", "b", "broken", "cine", "scan", "c"])
    one = run(segmenter, files, tmp_path / "one", 1, spacing_mm=0.3)
    many = run(segmenter, files, tmp_path / "many", workers, streams, spacing_mm=0.3)
    assert folder_bytes(tmp_path / "many") == folder_bytes(tmp_path / "one")
    assert many == one
    assert len(many.failures) == 1 and many.failures[0].startswith(f"{files[2]}: not a readable image")
    gland = [row for row in many.areas if row["class"] == "gland"]
    assert [(row["output"], row["frame"], row["spacing_source"]) for row in gland] == [
        ("a", 0, "manual"), ("b", 0, "manual"), ("cine_f000", 0, "dicom"), ("cine_f001", 1, "dicom"),
        ("cine_f002", 2, "dicom"), ("scan", 0, "depth_scale"), ("c", 0, "manual")]
    assert [row["area_px"] for row in gland if row["output"] in ("a", "c")] == [pytest.approx(600, abs=30), 4000]
    outputs = {row["output"] for row in gland}
    assert set(folder_bytes(tmp_path / "many")) == {AREAS_FILE} | {f"{name}_{kind}.png" for name in outputs
                                                                   for kind in ("mask", "overlay")}


class Instrumented:
    """Wraps ``Segmenter.prepare``, ``Segmenter.segment_prepared`` and the PNG writing with counters.

    Attributes:
        prepared_ahead: the most frames whose preparation had started and whose network run had not ended.
        written_behind: the most frames whose network run had ended and whose PNGs were not written.
        networks_at_once: the most network runs under way at the same time.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, network_s: float = 0.0,
                 fail: str | None = None, fail_at: int = 3) -> None:
        self.lock = threading.Lock()
        self.calls = {"prepare": 0, "network": 0, "write": 0}
        self.networks_done = self.writes_done = 0
        self.prepared_ahead = self.written_behind = self.networks_at_once = 0
        self.network_s, self.fail, self.fail_at = network_s, fail, fail_at
        monkeypatch.setattr(Segmenter, "prepare", self.wrap(Segmenter.prepare, "prepare"))
        monkeypatch.setattr(Segmenter, "segment_prepared", self.wrap(Segmenter.segment_prepared, "network"))
        monkeypatch.setattr(segment_module, "write_mask_and_overlay",
                            self.wrap(segment_module.write_mask_and_overlay, "write"))

    def wrap(self, function: Callable, stage: str) -> Callable:
        def wrapped(*args, **kwargs):
            with self.lock:
                self.calls[stage] += 1
                if stage == self.fail and self.calls[stage] == self.fail_at:
                    raise RuntimeError(f"boom in {stage} on frame {self.fail_at}")
                self.record()
            if stage == "network":
                time.sleep(self.network_s)
            result = function(*args, **kwargs)
            with self.lock:
                self.networks_done += stage == "network"
                self.writes_done += stage == "write"
                self.record()
            return result
        return wrapped

    def record(self) -> None:
        self.prepared_ahead = max(self.prepared_ahead, self.calls["prepare"] - self.networks_done)
        self.networks_at_once = max(self.networks_at_once, self.calls["network"] - self.networks_done)
        self.written_behind = max(self.written_behind, self.networks_done - self.writes_done)


@pytest.mark.parametrize("workers, streams, bound", [(1, 1, 1), (2, 1, 4), (3, 1, 6), (1, 2, 3), (2, 2, 6),
                                                     (3, 3, 9)])
def test_frames_in_flight_stay_within_the_bound(tmp_path: Path, segmenter: Segmenter, monkeypatch: pytest.MonkeyPatch,
                                                workers: int, streams: int, bound: int):
    """With a slow network the windows fill: 2 x workers frames prepared ahead of the network's window for one
    stream (one frame in all for one worker); for several, ``streams`` frames in the network, the next one taken
    for it and 2 x workers - 1 (none for one worker) prepared ahead. Exactly ``streams`` network runs at once."""
    files = write_frames(tmp_path / "in", [f"f{n}" for n in range(10)])
    counters = Instrumented(monkeypatch, network_s=0.05)
    result = run(segmenter, files, tmp_path / "out", workers, streams)
    assert counters.calls == {"prepare": 10, "network": 10, "write": 10} and len(result.areas) == 20
    assert counters.prepared_ahead == bound <= 2 * workers + streams
    assert counters.networks_at_once == streams
    assert 1 <= counters.written_behind <= workers + 1


@pytest.mark.parametrize("workers, streams", [(1, 1), (2, 1), (2, 2)])
@pytest.mark.parametrize("stage", ["prepare", "network", "write"])
def test_an_error_in_any_stage_propagates_and_stops_the_workers(tmp_path: Path, segmenter: Segmenter,
                                                                monkeypatch: pytest.MonkeyPatch, stage: str,
                                                                workers: int, streams: int):
    files = write_frames(tmp_path / "in", [f"f{n}" for n in range(12)])
    counters = Instrumented(monkeypatch, fail=stage)
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match=f"boom in {stage} on frame 3"):
        run(segmenter, files, tmp_path / "out", workers, streams)
    assert threading.active_count() == threads
    calls = dict(counters.calls)
    time.sleep(0.1)
    assert counters.calls == calls and calls["prepare"] < len(files)  # stopped, not run to the end
    assert not (tmp_path / "out" / AREAS_FILE).exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_progress_advances_as_each_file_is_finished(tmp_path: Path, segmenter: Segmenter, workers: int):
    files = write_frames(tmp_path / "in", ["a", "broken", "cine", "c"])
    out = tmp_path / "out"
    masks_seen: list[int] = []

    def progress() -> Iterator[tuple[Path, str]]:
        for entry in unique_stems(files):
            masks_seen.append(len(list(out.glob("*_mask.png"))))
            yield entry
        masks_seen.append(len(list(out.glob("*_mask.png"))))

    run(segmenter, files, out, workers, progress=progress())
    finished = [0, 1, 1, 1 + CINE_FRAMES, 2 + CINE_FRAMES]  # masks written when each file begins, then at the end
    assert len(masks_seen) == len(finished) and all(seen >= done for seen, done in zip(masks_seen, finished))
    if workers == 1:
        assert masks_seen == finished


@pytest.mark.parametrize("workers, exit_code", [("3", 0), ("0", 2)])
def test_trus_segment_takes_the_number_of_workers(tmp_path: Path, workers: str, exit_code: int):
    files = write_frames(tmp_path / "in", ["a", "cine", "c"])
    model = write_threshold_model(tmp_path / "m.onnx")
    result = CliRunner().invoke(app, ["segment", str(tmp_path / "in"), "--model", str(model),
                                      "--out", str(tmp_path / "out"), "--workers", workers])
    assert result.exit_code == exit_code, result.output
    if exit_code == 0:
        assert (tmp_path / "out" / AREAS_FILE).read_text().count("\n") == 1 + 2 * (2 + CINE_FRAMES)
    else:
        assert "--workers" in result.output and not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="workers and streams must be >= 1, got 0 and 1"):
        segment_files(Segmenter(model), files, tmp_path, workers=0)
    with pytest.raises(ValueError, match="workers and streams must be >= 1, got 2 and 0"):
        segment_files(Segmenter(model), files, tmp_path, streams=0)


@pytest.mark.parametrize("files, cores, streams, threads", [
    (1, 2, 1, 2),    # one file: its frames sooner, one at a time on all the cores
    (2, 2, 2, 1),    # several files on 2 cores: two frames at once, one core each
    (40, 8, 2, 4),   # 8 cores: two frames at once, 4 cores each
    (40, 3, 2, 1),   # an odd core is left to the workers
    (40, 1, 1, 1),   # one core: nothing to share
])
def test_default_streams_and_their_threads(files: int, cores: int, streams: int, threads: int):
    assert default_streams(files, cores) == streams
    assert network_threads(streams, cores) == threads
    assert network_threads(5, 4) == 1


@pytest.mark.parametrize("arguments, files, streams, threads, spinning", [
    ([], ["a", "cine", "c"], PARALLEL_STREAMS, 2, False),   # the default, on a machine of 4 physical cores
    ([], ["cine"], 1, 4, False),                            # one file: one frame at a time
    (["--streams", "3"], ["a", "c"], 3, 1, False),
    (["--streams", "1"], ["a", "c"], 1, 4, False),
    (["--workers", "1"], ["a", "c"], PARALLEL_STREAMS, 2, True),   # nothing beside the network: let it spin
    (["--workers", "1", "--streams", "1"], ["a", "c"], 1, 4, True),
])
def test_trus_segment_runs_the_network_on_its_streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      arguments: list[str], files: list[str], streams: int,
                                                      threads: int, spinning: bool):
    """The command opens the model with cores / streams threads, spinning only without workers beside it, and
    passes the streams to the pipeline."""
    write_frames(tmp_path / "in", files)
    model = write_threshold_model(tmp_path / "m.onnx")
    monkeypatch.setattr(segment_module, "physical_cores", lambda: 4)
    calls: dict[str, int | bool | None] = {}
    load = segment_module.load_segmenter
    run_files = segment_module.segment_files

    def loading(model_path: Path, precision: object, threads: int | None = None, spinning: bool = True) -> Segmenter:
        calls.update(threads=threads, spinning=spinning)
        return load(model_path, precision, threads, spinning)

    def segmenting(*args, **kwargs) -> SegmentResult:
        calls["streams"] = kwargs["streams"]
        return run_files(*args, **kwargs)

    monkeypatch.setattr(segment_module, "load_segmenter", loading)
    monkeypatch.setattr(segment_module, "segment_files", segmenting)
    result = CliRunner().invoke(app, ["segment", str(tmp_path / "in"), "--model", str(model),
                                      "--out", str(tmp_path / "out"), *arguments])
    assert result.exit_code == 0, result.output
    assert calls == {"threads": threads, "spinning": spinning, "streams": streams}
    assert f"{streams} frame(s) at once" in result.output
    frames = sum(CINE_FRAMES if name == "cine" else 1 for name in files)
    assert (tmp_path / "out" / AREAS_FILE).read_text().count("\n") == 1 + 2 * frames


def test_trus_segment_refuses_zero_streams(tmp_path: Path):
    write_frames(tmp_path / "in", ["a"])
    result = CliRunner().invoke(app, ["segment", str(tmp_path / "in"), "--model",
                                      str(write_threshold_model(tmp_path / "m.onnx")), "--out",
                                      str(tmp_path / "out"), "--streams", "0"])
    assert result.exit_code == 2 and "--streams" in result.output and not (tmp_path / "out").exists()


@pytest.mark.parametrize("crop, frame_name, detections", [
    ("auto", "scan", 1),   # the depth scale and the auto crop share one detection
    ("none", "scan", 1),   # the depth scale alone
    ("auto", "cine", 1),   # a DICOM spacing: the auto crop alone
    ("none", "cine", 0),   # a DICOM spacing and no crop: no fan needed
])
def test_prepare_frame_detects_the_fan_once_and_matches_the_separate_steps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crop: str, frame_name: str, detections: int):
    from dataclasses import replace

    import pipeline.imaging.depth_scale as depth_scale_module
    import pipeline.imaging.preprocessing as preprocessing_module
    import pipeline.inference.frame_outputs as frame_outputs_module
    from pipeline.imaging.calibration import calibrate
    from pipeline.imaging.fan import detect_fan
    from pipeline.imaging.frames import read_frames
    from pipeline.inference.frame_outputs import prepare_frame
    from tests.tiny_models import TINY_SPEC, tiny_contract

    model = write_threshold_model(tmp_path / "m.onnx", tiny_contract(replace(TINY_SPEC, crop=crop, size=64)))
    segmenter = Segmenter(model)
    frame = next(read_frames(write_frames(tmp_path / "in", [frame_name])[0]))
    calls = []
    for module in (frame_outputs_module, depth_scale_module, preprocessing_module):  # every place that detects it
        monkeypatch.setattr(module, "detect_fan", lambda gray: calls.append(1) or detect_fan(gray))
    ready = prepare_frame(segmenter, frame, spacing_mm=None)
    assert len(calls) == detections
    monkeypatch.undo()
    separate = segmenter.prepare(frame.gray, frame.region_box)
    assert ready.calibration == calibrate(frame.gray, frame.spacing_mm)
    np.testing.assert_array_equal(ready.prepared.image, separate.image)
    assert ready.prepared.geometry == separate.geometry
    assert ready.calibration.source == ("depth_scale" if frame_name == "scan" else "dicom")
