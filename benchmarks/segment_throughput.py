"""Throughput of ``trus segment`` on a folder of frames, one thread against the pipelined default.

    python benchmarks/segment_throughput.py --model PATH [--frames 40] [--workers 2] [--streams 2]
                                            [--repeats 3] [--precision auto|int8|fp32] [--true-masks]

Writes ``--frames`` synthetic 1280x872 TRUS frames (``pipeline.synthetic``'s phantom, the
original scanner's size) as grey PNG files to a temporary folder and loads the exported ONNX
model ``--model`` (nothing is trained) with :class:`pipeline.inference.predictor.Segmenter`. It
times:

- the network's own time per frame: ``Segmenter.run_processed`` on frames already prepared
  (``Segmenter.prepare``), one frame at a time on all the physical cores (the app's session),
  the median over the frames and ``--repeats`` passes;
- ``segment_files`` (the command's own function: read, calibrate, prepare, network, masks,
  overlay and PNGs, ``areas.csv``), wall time per frame, with ``--workers 1 --streams 1``
  (everything in one thread, the app's session), with ``--workers`` and one stream (reading,
  preparation and PNG writing on worker threads overlap the network in the caller's thread),
  and with ``--workers`` and ``--streams`` (the command's default on this machine: the network
  on ``--streams`` frames at once, a session of physical cores / streams threads). The
  pipelined runs' sessions do not spin between operators, as the command's.

With ``--true-masks``, the network still runs on every frame, but the pipeline gets each
frame's true gland and lesion masks (the phantom's, on the network's grid) in place of the
network's output. The work after the network (thresholds, components, review signal,
overlay) depends on the masks: a model with random weights "finds" a gland over most of the
frame, which costs far more than a real gland. The true masks stand in for a trained model's
output where none exists (the product model on this machine); the network's time is the real one.

It prints frames/s, ms/frame and the throughput as a percentage of the network's own
(1 / network time per frame): the pipeline's goal is 90% or more. It never fails on speed; the
load average is printed before and after (other processes on the machine slow every figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from bench_frames import FRAME_HEIGHT, FRAME_WIDTH, load, render_frame, write_grey_frames
from pipeline.cli.segment import DEFAULT_WORKERS, PARALLEL_STREAMS, network_threads, segment_files
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import to_network_grid
from pipeline.inference.predictor import Segmenter
from pipeline.inference.runtime import PRECISIONS


def network_seconds(segmenter: Segmenter, paths: list[Path], repeats: int) -> float:
    """Median seconds of the network alone (``run_processed``) per prepared frame, over ``repeats`` passes."""
    prepared = [segmenter.prepare(frame.gray, frame.region_box) for frame in map(read_frame, paths)]
    times = []
    for _ in range(repeats):
        for frame in prepared:
            start = time.perf_counter()
            segmenter.run_processed(frame.image)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def give_true_masks(segmenter: Segmenter, paths: list[Path], seed: int = 7) -> None:
    """Makes ``segmenter``'s network output the true masks of ``paths`` (written by ``write_grey_frames(.., seed)``).

    The network still runs on each frame; its probabilities are then replaced by the frame's
    true masks (0 or 1 per class, on the network's grid; a class the phantom lacks is empty),
    found by the prepared image's bytes. The plane output is the network's own.

    Raises:
        KeyError: a prepared image of none of ``paths`` (when the network runs).
    """
    truth: dict[bytes, np.ndarray] = {}
    for index, path in enumerate(paths):
        phantom = render_frame(index, seed)
        prepared = segmenter.prepare(read_frame(path).gray)
        masks = {"gland": phantom.gland_mask, "lesion": phantom.lesion_mask}
        truth[prepared.image.tobytes()] = np.stack([
            to_network_grid(masks[name], prepared.geometry, "nearest") if name in masks
            else np.zeros(prepared.image.shape, bool) for name in segmenter.classes]).astype(np.float32)[None]
    network = segmenter.run_processed

    def run_processed(images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        _, planes = network(images)
        return truth[images.tobytes()], planes

    segmenter.run_processed = run_processed  # type: ignore[method-assign]


def segment_seconds(segmenter: Segmenter, paths: list[Path], folder: Path, workers: int, streams: int) -> float:
    """Wall seconds per frame of ``segment_files`` over all the frames, into a new folder."""
    folder.mkdir()
    start = time.perf_counter()
    result = segment_files(segmenter, paths, folder, workers=workers, streams=streams)
    seconds = time.perf_counter() - start
    if result.failures or len({row["output"] for row in result.areas}) != len(paths):
        raise RuntimeError(f"segment_files did not segment every frame: {result.failures}")
    return seconds / len(paths)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="an exported ONNX model (the float model)")
    parser.add_argument("--frames", type=int, default=40, help="synthetic frames to segment (default 40)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"the pipelined run's workers (default {DEFAULT_WORKERS}, the command's)")
    parser.add_argument("--streams", type=int, default=PARALLEL_STREAMS,
                        help=f"frames the network runs at once in the last run (default {PARALLEL_STREAMS}, "
                             "the command's for several files on 2 or more cores)")
    parser.add_argument("--true-masks", action="store_true",
                        help="the pipeline gets the frames' true masks in place of the network's output "
                             "(the network still runs)")
    parser.add_argument("--repeats", type=int, default=3, help="passes of the network-only timing (default 3)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="which model runs, as the app chooses (default auto)")
    args = parser.parse_args()
    if min(args.frames, args.workers, args.streams, args.repeats) < 1:
        parser.error("--frames, --workers, --streams and --repeats must be >= 1")
    return args


def main() -> None:
    args = parse_args()
    print(f"load average before: {load()}  ({os.cpu_count()} CPUs, ONNX Runtime {ort.__version__}, "
          f"OpenCV {cv2.__version__})")
    segmenter = Segmenter(args.model, precision=args.precision)
    size = segmenter.contract.preprocess.size
    print(f"model {segmenter.path} ({segmenter.precision}, {size}x{size} px, "
          f"filter {segmenter.contract.preprocess.filter.method}); {args.frames} frames "
          f"{FRAME_WIDTH}x{FRAME_HEIGHT} png" + ("; the pipeline gets the true masks" if args.true_masks else "") + "\n")
    with tempfile.TemporaryDirectory(prefix="segment_throughput_") as tmp:
        frames_dir = Path(tmp) / "in"
        frames_dir.mkdir()
        paths = write_grey_frames(frames_dir, args.frames)
        segmenter.segment(read_frame(paths[0]).gray)  # warm-up: ONNX Runtime's first run, lazy imports
        network = network_seconds(segmenter, paths, args.repeats)
        if args.true_masks:
            give_true_masks(segmenter, paths)
        runs = {"--workers 1 --streams 1": segment_seconds(segmenter, paths, Path(tmp) / "one", 1, 1)}
        for streams in dict.fromkeys((1, args.streams)):
            if args.workers == 1 and streams == 1:
                continue
            threads = network_threads(streams)
            command = Segmenter(args.model, threads=threads, precision=args.precision, spinning=args.workers == 1)
            command.segment(read_frame(paths[0]).gray)
            if args.true_masks:
                give_true_masks(command, paths)
            runs[f"--workers {args.workers} --streams {streams} ({threads} thr.)"] = segment_seconds(
                command, paths, Path(tmp) / f"streams{streams}", args.workers, streams)
    header = f"{'path':<36}{'frames/s':>10}{'ms/frame':>10}{'of network':>12}"
    print(header)
    print("-" * len(header))
    print(f"{'network alone (run_processed)':<36}{1 / network:>10.2f}{1e3 * network:>10.1f}{'100%':>12}")
    for name, seconds in runs.items():
        print(f"{name:<36}{1 / seconds:>10.2f}{1e3 * seconds:>10.1f}{f'{100 * network / seconds:.0f}%':>12}")
    print("\nof network: frames/s as a percentage of the network's own, 1 / (its median time per prepared frame); "
          "the pipeline's goal is >= 90%.")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
