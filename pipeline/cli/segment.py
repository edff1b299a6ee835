"""``trus segment``: segment frame files with an exported model; a mask, an overlay and areas per frame.

``areas.csv`` has one row per frame and class; with a model that classifies the plane (its
contract's ``plane_classes``), each row also carries the frame's predicted ``plane`` and its
probability ``plane_probability`` (both empty for a model without a plane output). The mm²
come from the frame's pixel spacing, found by the calibration chain
(:func:`pipeline.imaging.calibration.calibrate`: DICOM, depth scale, ``--spacing-mm``);
``spacing_x_mm``, ``spacing_y_mm`` and ``spacing_source`` say which (empty and ``none`` without one).
``review`` (``yes``/``no``) and ``review_reason`` flag a frame whose gland the model is unsure
about (:mod:`pipeline.inference.review`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import track

from pipeline.cli.common import (EXIT_BAD_INPUT, Force, check_spacing_options, console, expand_inputs, one_line_errors,
                                 say, unique_stems)
from pipeline.files.atomic import write_text_atomically
from pipeline.files.output_folder import output_folder
from pipeline.imaging.calibration import calibrate
from pipeline.imaging.depth_scale import TICK_MM
from pipeline.imaging.frames import FrameReadError, read_frames
from pipeline.inference.contract import THRESHOLD_RANGE
from pipeline.inference.measure import class_areas, draw_overlay
from pipeline.inference.saving import write_mask_and_overlay
from pipeline.layout import MODEL_FILE

if TYPE_CHECKING:
    from pipeline.inference.predictor import Segmenter

AREAS_FILE = "areas.csv"
AREA_COLUMNS = ("file", "frame", "output", "width", "height", "class", "area_px", "area_mm2", "spacing_x_mm",
                "spacing_y_mm", "spacing_source", "plane", "plane_probability", "review", "review_reason")


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


def segment_files(segmenter: Segmenter, files: list[Path], out_dir: Path, threshold: float | None = None,
                  progress: Iterable[tuple[Path, str]] | None = None, spacing_mm: float | None = None,
                  tick_mm: float = TICK_MM) -> SegmentResult:
    """Segments every frame of every file; writes masks, overlays and ``areas.csv``.

    A file that cannot be read is reported in ``failures`` and skipped; every file
    written is complete (atomic writes). Multi-frame DICOMs give one output per frame
    (``<stem>_f000``...).

    Args:
        segmenter: the loaded model.
        files: frame files.
        out_dir: an existing output folder.
        threshold: probability threshold; the model's own when None.
        progress: an iterable wrapping ``unique_stems(files)`` (e.g. a progress bar).
        spacing_mm: mm per px for frames without a DICOM spacing or a readable depth scale.
        tick_mm: mm between the depth scale's interval ticks.
    """
    threshold = segmenter.contract.threshold if threshold is None else threshold
    rows, failures = [], []
    for path, stem in progress if progress is not None else unique_stems(files):
        try:
            frames = list(read_frames(path))
        except FrameReadError as error:
            failures.append(str(error))
            continue
        for index, frame in enumerate(frames):
            name = stem if len(frames) == 1 else f"{stem}_f{index:03d}"
            segmentation = segmenter.segment(frame.gray, frame.region_box)
            masks = segmentation.masks(threshold)
            write_mask_and_overlay(out_dir, name, masks, draw_overlay(frame.gray, masks))
            plane = segmentation.plane
            probability = None if plane is None else segmentation.plane_probabilities[plane]  # type: ignore[index]
            calibration = calibrate(frame.gray, frame.spacing_mm, tick_mm, spacing_mm)
            reason = segmentation.review_reason(threshold)
            spacing = calibration.spacing_mm
            for area in class_areas(masks, segmenter.classes, spacing):
                rows.append({"file": str(path), "frame": index, "output": name, "width": frame.gray.shape[1],
                             "height": frame.gray.shape[0], "class": area.name, "area_px": area.pixels,
                             "area_mm2": area.mm2, "spacing_x_mm": None if spacing is None else spacing[0],
                             "spacing_y_mm": None if spacing is None else spacing[1],
                             "spacing_source": calibration.source, "plane": plane, "plane_probability": probability,
                             "review_reason": reason})
    write_text_atomically(out_dir / AREAS_FILE, areas_csv(rows))
    return SegmentResult(rows, failures)


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
    force: Force = False,
) -> None:
    """Segment frames: a mask PNG and an overlay PNG per frame at its own size, and areas.csv (with the
    predicted plane when the model classifies it)."""
    from pipeline.inference.predictor import Segmenter  # ONNX Runtime is loaded by this command only

    with one_line_errors():
        check_spacing_options(spacing_mm, tick_mm)
        segmenter = Segmenter(model)
        files = expand_inputs(inputs)
        stems = list(unique_stems(files))
        with output_folder(out, "trus segment", sources=[*inputs, model], force=force) as staging:
            result = segment_files(segmenter, files, staging, threshold,
                                   progress=track(stems, description="segmenting", console=console, transient=True),
                                   spacing_mm=spacing_mm, tick_mm=tick_mm)
    for message in result.failures:
        say(message, "error")
    done = len({row["output"] for row in result.areas})
    say(f"segment: {done} frame(s) -> {out} (masks, overlays, {AREAS_FILE})")
    if result.failures:
        raise typer.Exit(EXIT_BAD_INPUT)
