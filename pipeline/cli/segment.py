"""``trus segment``: segment frame files with an exported model; a mask, an overlay and areas per frame.

``areas.csv`` has one row per frame and class; with a model that classifies the plane (its
contract's ``plane_classes``), each row also carries the frame's predicted ``plane`` and its
probability ``plane_probability`` (both empty for a model without a plane output). The mm²
come from the frame's pixel spacing, found by the calibration chain
(:func:`pipeline.imaging.calibration.calibrate`: DICOM, depth scale, ``--spacing-mm``);
``spacing_x_mm``, ``spacing_y_mm`` and ``spacing_source`` say which (empty and ``none`` without one).
``review`` (``yes``/``no``) and ``review_reason`` flag a frame whose gland the model is unsure
about (:mod:`pipeline.inference.review`).

The frames go through a pipeline, in input order: the files are read (``read_frames``), each
frame's spacing calibrated and the frame prepared for the network (``Segmenter.prepare``:
crop, resize, diffusion filter) on ``--workers`` threads, while the network runs
(``Segmenter.segment_prepared``) on ``--streams`` frames at once: in the caller's thread for
one stream, else on as many threads of their own, sharing one ONNX Runtime session opened with
the physical cores / streams intra-op threads (:func:`network_threads`), which do not spin
between operators when workers run beside them (spinning would take their cores). The workers then
threshold the frame's masks and write its mask and overlay PNGs while the network runs on the
next frames. So reading, preprocessing and PNG encoding overlap the network. Two frames on one
core each keep the cores busier than one frame on both (a convolution split over two threads
waits at each layer's end for the slower half): more frames per second, each one slower
(figures: README "``trus segment`` on many frames"). Memory stays bounded whatever the number
of files: the frames of at most :data:`FILES_READ_AT_ONCE` files read and not yet prepared (the
next file is read while the current one's frames are prepared), ``2 * workers + streams``
frames between their preparation and the end of their network run, and ``workers + 1``
segmented frames waiting for their PNGs. ``--workers 1 --streams 1`` runs everything in one
thread, one frame after the other; the outputs are the same, byte for byte, whatever the
number of workers and streams on the same session.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol, TypeVar

import typer
from rich.progress import track

from pipeline.cli.common import (EXIT_BAD_INPUT, Force, Precision, PrecisionChoice, check_spacing_options, console,
                                 expand_inputs, load_segmenter, one_line_errors, say, unique_stems)
from pipeline.files.atomic import write_text_atomically
from pipeline.files.output_folder import output_folder
from pipeline.imaging.depth_scale import TICK_MM
from pipeline.imaging.frames import Frame, FrameReadError, read_frames
from pipeline.inference.contract import THRESHOLD_RANGE
from pipeline.inference.frame_outputs import ReadyFrame, frame_outputs, prepare_frame
from pipeline.inference.measure import draw_overlay
from pipeline.inference.runtime import physical_cores
from pipeline.inference.saving import write_mask_and_overlay
from pipeline.layout import MODEL_FILE

if TYPE_CHECKING:
    from pipeline.inference.predictor import Segmentation, Segmenter

AREAS_FILE = "areas.csv"
AREA_COLUMNS = ("file", "frame", "output", "width", "height", "class", "area_px", "area_mm2", "spacing_x_mm",
                "spacing_y_mm", "spacing_source", "plane", "plane_probability", "review", "review_reason")
DEFAULT_WORKERS = 2
"""Threads that read, prepare and write frames while the network runs."""
PARALLEL_STREAMS = 2
"""Frames the network runs at once by default, on a machine of 2 or more physical cores and for more than one file."""
FILES_READ_AT_ONCE = 2
"""Files in the reading stage at once: the next file is read while the current one's frames are prepared (a
multi-frame DICOM is read whole)."""

T = TypeVar("T")
R = TypeVar("R")


def default_streams(files: int, cores: int | None = None) -> int:
    """How many frames the network runs at once when the user does not say.

    Args:
        files: the number of input files.
        cores: physical cores; None: this machine's (:func:`pipeline.inference.runtime.physical_cores`).

    Returns:
        :data:`PARALLEL_STREAMS` for more than one file on 2 or more cores (more frames per
        second); 1 for one file (its frame sooner, on all the cores) or one core.
    """
    cores = physical_cores() if cores is None else cores
    return PARALLEL_STREAMS if files > 1 and cores >= 2 else 1


def network_threads(streams: int, cores: int | None = None) -> int:
    """ONNX Runtime's intra-op threads for ``streams`` frames at once: the physical cores shared out, at least 1."""
    cores = physical_cores() if cores is None else cores
    return max(1, cores // streams)


@dataclass(frozen=True)
class SegmentResult:
    """What a batch run produced: one area row per frame and class, and the failures."""

    areas: list[dict]
    failures: list[str]


def areas_csv(rows: list[dict]) -> str:
    """The area rows as CSV text (mm² empty when the spacing is unknown, the plane columns without a plane output)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=AREA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "area_mm2": "" if row["area_mm2"] is None else f"{row['area_mm2']:.3f}",
                      **{key: "" if row[key] is None else f"{row[key]:.6f}"
                         for key in ("spacing_x_mm", "spacing_y_mm")},
                      "plane": row.get("plane") or "",
                      "plane_probability": "" if row.get("plane_probability") is None
                      else f"{row['plane_probability']:.4f}",
                      "review": "yes" if row.get("review_reason") else "no",
                      "review_reason": row.get("review_reason") or ""} for row in rows)
    return buffer.getvalue()


class _Runner(Protocol):
    """Runs one stage: ``function`` over ``items``, results in the items' order, lazily."""

    def __call__(self, function: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]: ...


def _one_by_one(function: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    """A stage in the caller's thread: each item when the next stage asks for it (``ahead`` unused)."""
    return map(function, items)


def _in_order(pool: ThreadPoolExecutor, function: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[R]:
    """A stage on ``pool``: results in the items' order, at most ``ahead`` items submitted and not yet yielded.

    ``ahead`` counts the item whose result is awaited: with 2, one item is worked on ahead of it.
    The items are taken as the window has room, so a lazy ``items`` is never read far ahead. A
    worker's exception is raised here, when its result's turn comes.
    """
    pending: deque[Future[R]] = deque()
    for item in items:
        if len(pending) == ahead:
            yield pending.popleft().result()
        pending.append(pool.submit(function, item))
    while pending:
        yield pending.popleft().result()


@contextmanager
def _stage_runner(workers: int, name: str = "trus-segment") -> Iterator[_Runner]:
    """The stages' runner: the caller's thread for one worker, else a pool of ``workers`` threads named ``name``.

    On leaving (normally or by an exception) the pool's queued work is cancelled and its threads
    joined: at most ``workers`` tasks finish first, none is left running.
    """
    if workers == 1:
        yield _one_by_one
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    try:
        yield partial(_in_order, pool)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _NoFrames:
    """A file without frames to segment: ``failure``, its FrameReadError message, or None for an empty file."""

    failure: str | None = None


@dataclass(frozen=True)
class _Job:
    """A frame read from a file: ``index`` in it, ``name`` the stem of its outputs, ``last`` whether it ends the file."""

    path: Path
    index: int
    name: str
    last: bool
    frame: Frame


@dataclass(frozen=True)
class _Ready:
    """A frame ready for the network: its spacing and the network's input."""

    job: _Job
    ready: ReadyFrame


def _read(entry: tuple[Path, str]) -> list[_Job] | list[_NoFrames]:
    """A file's frames (multi-frame outputs: ``<stem>_f000``...), or why it has none."""
    path, stem = entry
    try:
        frames = list(read_frames(path))
    except FrameReadError as error:
        return [_NoFrames(str(error))]
    if not frames:
        return [_NoFrames()]
    names = [stem] if len(frames) == 1 else [f"{stem}_f{index:03d}" for index in range(len(frames))]
    return [_Job(path, index, name, index == len(frames) - 1, frame)
            for index, (name, frame) in enumerate(zip(names, frames))]


def _prepare(segmenter: Segmenter, tick_mm: float, spacing_mm: float | None,
             item: _Job | _NoFrames) -> _Ready | _NoFrames:
    """Calibrates a frame's spacing and runs the model's preprocessing on it (a worker's part)."""
    if isinstance(item, _NoFrames):
        return item
    return _Ready(item, prepare_frame(segmenter, item.frame, tick_mm, spacing_mm))


def _run_network(segmenter: Segmenter, item: _Ready | _NoFrames) -> tuple[_Ready, Segmentation] | _NoFrames:
    """The network on a prepared frame, mapped back onto the frame (a stream's part)."""
    if isinstance(item, _NoFrames):
        return item
    return item, segmenter.segment_prepared(item.ready.prepared)


def _finish(out_dir: Path, threshold: float,
            item: tuple[_Ready, Segmentation] | _NoFrames) -> tuple[list[dict], bool] | _NoFrames:
    """Writes a segmented frame's mask and overlay PNGs (a worker's part).

    Returns:
        The frame's area rows, one per class, and whether it is its file's last frame.
    """
    if isinstance(item, _NoFrames):
        return item
    ready, segmentation = item
    job = ready.job
    outputs = frame_outputs(segmentation, ready.ready.calibration, threshold)
    write_mask_and_overlay(out_dir, job.name, outputs.masks, draw_overlay(job.frame.gray, outputs.masks))
    spacing = outputs.calibration.spacing_mm
    return [{"file": str(job.path), "frame": job.index, "output": job.name, "width": job.frame.gray.shape[1],
             "height": job.frame.gray.shape[0], "class": area.name, "area_px": area.pixels, "area_mm2": area.mm2,
             "spacing_x_mm": None if spacing is None else spacing[0],
             "spacing_y_mm": None if spacing is None else spacing[1], "spacing_source": outputs.calibration.source,
             "plane": outputs.plane, "plane_probability": outputs.plane_probability,
             "review_reason": outputs.review_reason}
            for area in outputs.areas], job.last


def _collect(finished: Iterable[tuple[list[dict], bool] | _NoFrames],
             progress: Iterable[object] | None) -> SegmentResult:
    """Gathers the rows and failures in order, advancing ``progress`` one step as each file is finished."""
    ticks = iter(progress if progress is not None else ())
    next(ticks, None)  # the first file begins
    rows: list[dict] = []
    failures: list[str] = []
    for item in finished:
        if isinstance(item, _NoFrames):
            failures.extend([] if item.failure is None else [item.failure])
            next(ticks, None)
        else:
            frame_rows, last = item
            rows.extend(frame_rows)
            if last:
                next(ticks, None)
    return SegmentResult(rows, failures)


def segment_files(segmenter: Segmenter, files: list[Path], out_dir: Path, threshold: float | None = None,
                  progress: Iterable[object] | None = None, spacing_mm: float | None = None,
                  tick_mm: float = TICK_MM, workers: int = DEFAULT_WORKERS, streams: int = 1) -> SegmentResult:
    """Segments every frame of every file; writes masks, overlays and ``areas.csv``.

    A file that cannot be read is reported in ``failures`` and skipped; every file
    written is complete (atomic writes). Multi-frame DICOMs give one output per frame
    (``<stem>_f000``...). With ``workers`` > 1, ``workers`` threads read, calibrate and
    prepare the next frames and write the previous ones' PNGs while the network runs, on
    ``streams`` frames at once (see the module's docstring); the outputs are the same, byte for
    byte, as with one worker and one stream. Any other exception than a :class:`FrameReadError`
    (in a worker, a stream or here) is raised here once the threads are stopped; ``areas.csv``
    is then not written.

    Args:
        segmenter: the loaded model.
        files: frame files.
        out_dir: an existing output folder.
        threshold: probability threshold; the model's own when None.
        progress: an iterable with one item per file (e.g. a progress bar over
            ``unique_stems(files)``), advanced one step as each file is finished; its items are not used.
        spacing_mm: mm per px for frames without a DICOM spacing or a readable depth scale.
        tick_mm: mm between the depth scale's interval ticks.
        workers: threads, >= 1; 1 reads, prepares and writes in this thread, one frame after the other.
        streams: frames the network runs at once, >= 1; 1 runs it in this thread. Open ``segmenter``
            with :func:`network_threads` ``(streams)`` threads. At most ``2 * workers + streams``
            frames are between their preparation and the end of their network run.

    Raises:
        ValueError: ``workers`` or ``streams`` < 1.
    """
    if workers < 1 or streams < 1:
        raise ValueError(f"workers and streams must be >= 1, got {workers} and {streams}")
    threshold = segmenter.contract.threshold if threshold is None else threshold
    with _stage_runner(workers) as run, _stage_runner(streams, "trus-network") as run_network:
        jobs = chain.from_iterable(run(_read, unique_stems(files), FILES_READ_AT_ONCE))
        ready = run(partial(_prepare, segmenter, tick_mm, spacing_mm), jobs, 2 * workers)
        segmented = run_network(partial(_run_network, segmenter), ready, streams)
        finished = run(partial(_finish, out_dir, threshold), segmented, workers)
        result = _collect(finished, progress)
    write_text_atomically(out_dir / AREAS_FILE, areas_csv(result.areas))
    return result


def segment(
    inputs: Annotated[list[Path], typer.Argument(help="Frame files (PNG, JPEG, BMP, TIFF, DICOM) or folders.")],
    model: Annotated[Path, typer.Option(help="Exported ONNX model.")] = MODEL_FILE,
    out: Annotated[Path, typer.Option(help="New folder for masks, overlays and areas.csv.")] = Path("segmentations"),
    threshold: Annotated[float | None, typer.Option(min=THRESHOLD_RANGE[0], max=THRESHOLD_RANGE[1],
                                                    help="Probability threshold (default: the model's).")] = None,
    spacing_mm: Annotated[float | None, typer.Option(
        "--spacing-mm",
        help="mm per pixel (square pixels) for frames without a DICOM spacing or a readable depth scale.")] = None,
    tick_mm: Annotated[float, typer.Option(
        "--tick-mm", help="mm between the depth scale's interval (longer) ticks.")] = TICK_MM,
    workers: Annotated[int, typer.Option(
        min=1, help="Threads that read, preprocess and write frames while the network runs "
                    "(1: one frame after the other in one thread).")] = DEFAULT_WORKERS,
    streams: Annotated[int | None, typer.Option(
        min=1, help=f"Frames the network runs at once, each on (physical cores / streams) threads (default: "
                    f"{PARALLEL_STREAMS} for several files on 2 or more cores, more frames per second; else 1).")] = None,
    precision: Precision = PrecisionChoice.auto,
    force: Force = False,
) -> None:
    """Segment frames: a mask PNG and an overlay PNG per frame at its own size, and areas.csv (with the
    predicted plane when the model classifies it)."""
    with one_line_errors():
        check_spacing_options(spacing_mm, tick_mm)
        files = expand_inputs(inputs)
        stems = list(unique_stems(files))
        streams = default_streams(len(files)) if streams is None else streams
        segmenter = load_segmenter(model, precision, network_threads(streams), spinning=workers == 1)
        with output_folder(out, "trus segment", sources=[*inputs, model], force=force) as staging:
            result = segment_files(segmenter, files, staging, threshold,
                                   progress=track(stems, description="segmenting", console=console, transient=True),
                                   spacing_mm=spacing_mm, tick_mm=tick_mm, workers=workers, streams=streams)
    for message in result.failures:
        say(message, "error")
    done = len({row["output"] for row in result.areas})
    say(f"segment: {done} frame(s) -> {out} (masks, overlays, {AREAS_FILE}); model {segmenter.path.name}, "
        f"{segmenter.choice.reason}; {streams} frame(s) at once")
    if result.failures:
        raise typer.Exit(EXIT_BAD_INPUT)
