"""Throughput of ``trus segment`` on a folder of frames, one thread against the pipelined default.

    python benchmarks/segment_throughput.py --model PATH [--frames 40] [--workers 2] [--streams 2]
                                            [--repeats 3] [--precision auto|int8|fp32]

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
import onnxruntime as ort

from bench_frames import FRAME_HEIGHT, FRAME_WIDTH, load, write_grey_frames
from pipeline.cli.segment import DEFAULT_WORKERS, PARALLEL_STREAMS, network_threads, segment_files
from pipeline.imaging.frames import read_frame
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
          f"{FRAME_WIDTH}x{FRAME_HEIGHT} png\n")
    with tempfile.TemporaryDirectory(prefix="segment_throughput_") as tmp:
        frames_dir = Path(tmp) / "in"
        frames_dir.mkdir()
        paths = write_grey_frames(frames_dir, args.frames)
        segmenter.segment(read_frame(paths[0]).gray)  # warm-up: ONNX Runtime's first run, lazy imports
        network = network_seconds(segmenter, paths, args.repeats)
        runs = {"--workers 1 --streams 1": segment_seconds(segmenter, paths, Path(tmp) / "one", 1, 1)}
        for streams in dict.fromkeys((1, args.streams)):
            if args.workers == 1 and streams == 1:
                continue
            threads = network_threads(streams)
            command = Segmenter(args.model, threads=threads, precision=args.precision, spinning=args.workers == 1)
            command.segment(read_frame(paths[0]).gray)
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
