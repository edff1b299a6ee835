"""Frames per second of the whole preprocess path, per diffusion filter.

    python benchmarks/preprocess_fps.py [--frames 40] [--size 768] [--format png|jpg]
                                        [--crop auto|box|none] [--repeats 3] [--workers 1]

Writes ``--frames`` synthetic TRUS frames (``pipeline.synthetic``'s phantom, 1280x872,
the original scanner's size) to a temporary folder - grey PNG like the ``pull`` stage's
output, or colour JPEG q90 like a Roboflow export - then times, for each filter, the
``preprocess`` stage itself (``preprocess_all`` on the frames laid out as the pull stage
writes them, on every core: the STAGE column), and the path it runs per frame: decode (``read_frame``) -> ``preprocess_frame``
(crop, resize to size x size, filter) -> PNG write (``write_png_atomically``, as the stage). It prints frames/s
and ms/frame, the split into decode / preprocess / write, and the filter alone on the
resized frames. The best of ``--repeats`` passes is shown (other processes on the machine
only ever slow a pass down); the load average is printed before and after. It never
fails on speed. ``--workers 2`` runs frames on 2 threads at once (OpenCV and the PNG/JPEG
codecs release the GIL), the throughput a 2-core machine could reach.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench_frames import FRAME_HEIGHT, FRAME_WIDTH, load
from pipeline.imaging.diffusion import apply_filter
from pipeline.imaging.frames import read_frame
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.imaging.preprocessing import preprocess_frame
from pipeline.imaging.masks import pack_masks
from pipeline.imaging.png import write_png_atomically
from pipeline.layout import IMAGES, MANIFEST, MASKS
from pipeline.stages.preprocess import preprocess_all
from pipeline.synthetic import render_phantom

FILTERS: dict[str, FilterSpec] = {
    "none": FilterSpec(method="none"),
    "isotropic": FilterSpec(method="isotropic"),
    "perona_malik": FilterSpec(method="perona_malik", iterations=10),
    "srad": FilterSpec(method="srad"),
}


@dataclass(frozen=True)
class Timing:
    """One pass over all frames with one filter; times in seconds.

    Attributes:
        wall: wall-clock time of the pass.
        decode, preprocess, write: per-frame stage times, summed over the frames.
        frames: frames processed.
    """

    wall: float
    decode: float
    preprocess: float
    write: float
    frames: int


def describe(name: str, spec: FilterSpec) -> str:
    """A short label with the filter's main parameters."""
    if name == "isotropic":
        return f"isotropic (t={spec.time:g} px^2)"
    if name == "perona_malik":
        return f"perona_malik ({spec.iterations} it, {spec.conductance}, kappa {spec.kappa:g})"
    if name == "srad":
        return f"srad ({spec.srad_iterations} it, step {spec.srad_step:g}, {spec.srad_dynamic_range_db:g} dB)"
    return name


def write_frames(folder: Path, count: int, suffix: str) -> list[Path]:
    """Renders ``count`` 1280x872 phantom frames into ``folder``; grey PNG or colour JPEG q90.

    Beside each frame, ``<stem>_mask.png`` holds its true gland/lesion bitmask (bit 0 gland, bit 1 lesion).
    """
    paths = []
    for index in range(count):
        frame = render_phantom(np.random.default_rng([7, index]), FRAME_WIDTH, FRAME_HEIGHT,
                               with_lesion=index % 2 == 0, label=f"BENCH F{index:03d}")
        path = folder / f"frame_{index:03d}{suffix}"
        if suffix == ".png":  # as the pull stage writes them
            write_png_atomically(path, cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY))
        elif not cv2.imwrite(str(path), frame.image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"could not write {path}")
        write_png_atomically(folder / f"{path.stem}_mask.png", pack_masks(np.stack([frame.gland_mask,
                                                                                   frame.lesion_mask])))
        paths.append(path)
    return paths


def process_one(path: Path, out_dir: Path, spec: PreprocessSpec) -> tuple[float, float, float]:
    """The stage's per-frame path; returns (decode, preprocess, write) seconds."""
    start = time.perf_counter()
    gray = read_frame(path).gray
    decoded = time.perf_counter()
    processed = preprocess_frame(gray, spec)
    done = time.perf_counter()
    write_png_atomically(out_dir / f"{path.stem}.png", processed.image)
    return decoded - start, done - decoded, time.perf_counter() - done


def run_pass(paths: list[Path], out_dir: Path, spec: PreprocessSpec, workers: int) -> Timing:
    """Processes every frame once, on ``workers`` threads."""
    start = time.perf_counter()
    if workers == 1:
        parts = [process_one(path, out_dir, spec) for path in paths]
    else:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda path: process_one(path, out_dir, spec), paths))
    wall = time.perf_counter() - start
    decode, preprocess, write = (sum(values) for values in zip(*parts))
    return Timing(wall, decode, preprocess, write, len(paths))


def filter_only_ms(paths: list[Path], spec: PreprocessSpec) -> float:
    """Median ms of the filter alone on each frame's resized (unfiltered) network grid."""
    unfiltered = PreprocessSpec(crop=spec.crop, crop_box=spec.crop_box, size=spec.size,
                                resize=spec.resize, interpolation=spec.interpolation,
                                filter=FilterSpec(method="none"))
    grids = [preprocess_frame(read_frame(path).gray, unfiltered).image for path in paths]
    times = []
    for grid in grids:
        start = time.perf_counter()
        apply_filter(grid, spec.filter)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def write_pull_output(frames_dir: Path, paths: list[Path]) -> None:
    """Lays grey frames out as the pull stage does: ``images/``, ``masks/`` (bitmask) and ``manifest.csv``."""
    (frames_dir / IMAGES).mkdir(parents=True)
    (frames_dir / MASKS).mkdir()
    ids = []
    for path in paths:
        gray = read_frame(path).gray
        write_png_atomically(frames_dir / IMAGES / f"{path.stem}.png", gray)  # as the pull stage writes them
        shutil.copy(path.with_name(f"{path.stem}_mask.png"), frames_dir / MASKS / f"{path.stem}.png")
        ids.append(path.stem)
    (frames_dir / MANIFEST).write_text("frame_id,patient\n" + "".join(f"{i},P{n // 5:03d}\n" for n, i in enumerate(ids)))


def stage_fps(frames_dir: Path, spec: PreprocessSpec, repeats: int) -> float:
    """Frames/s of the preprocess stage's own function (all cores, masks and plots included), best pass."""
    count = len(list((frames_dir / IMAGES).iterdir()))
    best = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="preprocess_stage_") as out:
            (Path(out) / "processed").mkdir()
            (Path(out) / "plots").mkdir()
            start = time.perf_counter()
            preprocess_all(frames_dir, Path(out) / "processed", spec, Path(out) / "plots", progress=False)
            best = min(best, time.perf_counter() - start)
    return count / best


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40, help="synthetic frames to process (default 40)")
    parser.add_argument("--size", type=int, default=768, help="network input side, px (default 768)")
    parser.add_argument("--format", choices=("png", "jpg"), default="png",
                        help="input files: grey PNG as the pull stage writes, or colour JPEG q90 (default png)")
    parser.add_argument("--crop", choices=("auto", "box", "none"), default="auto",
                        help="crop mode; box uses the whole frame as the fixed box (default auto)")
    parser.add_argument("--repeats", type=int, default=3, help="passes per filter; the best is shown (default 3)")
    parser.add_argument("--workers", type=int, default=1, help="frames processed at once (default 1, as the stage)")
    args = parser.parse_args()
    if args.frames < 1 or args.repeats < 1 or args.workers < 1:
        parser.error("--frames, --repeats and --workers must be >= 1")
    return args


def main() -> None:
    args = parse_args()
    box = (0, 0, FRAME_WIDTH, FRAME_HEIGHT) if args.crop == "box" else None
    print(f"load average before: {load()}  ({os.cpu_count()} CPUs, OpenCV {cv2.__version__}, "
          f"{cv2.getNumThreads()} OpenCV threads)")
    with tempfile.TemporaryDirectory(prefix="preprocess_fps_") as tmp:
        in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        in_dir.mkdir()
        out_dir.mkdir()
        paths = write_frames(in_dir, args.frames, f".{args.format}")
        print(f"{args.frames} frames {FRAME_WIDTH}x{FRAME_HEIGHT} {args.format} -> {args.size}x{args.size} png, "
              f"crop {args.crop}, letterbox, area; {args.workers} worker(s), best of {args.repeats} passes\n")
        stage_dir = Path(tmp) / "pull"
        write_pull_output(stage_dir, paths)
        header = (f"{'filter':<48}{'STAGE f/s':>10}{'frames/s':>9}{'ms/frame':>10}{'decode':>8}{'preproc':>9}"
                  f"{'write':>7}{'filter-only':>13}")
        print(header)
        print("-" * len(header))
        for name, filter_spec in FILTERS.items():
            spec = PreprocessSpec(crop=args.crop, crop_box=box, size=args.size, filter=filter_spec)
            process_one(paths[0], out_dir, spec)  # warm-up: caches, lazy imports, thread pools
            best = min((run_pass(paths, out_dir, spec, args.workers) for _ in range(args.repeats)),
                       key=lambda timing: timing.wall)
            per_frame = lambda seconds: 1e3 * seconds / best.frames  # noqa: E731
            stage = stage_fps(stage_dir, spec, args.repeats)
            print(f"{describe(name, filter_spec):<48}{stage:>10.1f}{best.frames / best.wall:>9.1f}"
                  f"{per_frame(best.wall):>10.1f}"
                  f"{per_frame(best.decode):>8.1f}{per_frame(best.preprocess):>9.1f}{per_frame(best.write):>7.1f}"
                  f"{filter_only_ms(paths, spec):>13.1f}")
    print(f"\nSTAGE f/s: pipeline.stages.preprocess.preprocess_all, the stage itself, on the frames laid out as the pull "
          f"stage writes them (grey PNG + bitmask), {os.cpu_count()} threads, image + mask + plots + frames.csv.")
    print("frames/s, ms columns: the per-frame path alone (--workers threads); ms per frame; decode/preproc/write are per-frame stage times (summed over threads when "
          "--workers > 1); preproc = crop + resize + filter; filter-only = median of the filter alone on the "
          "resized frame.")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
