"""``trus measure``: the gland's width and height on a transverse frame, its length on a sagittal
frame, the ellipsoid volume and, with a PSA value, the PSA density.

The diameters and the volume come from :mod:`pipeline.inference.gland_size`. Each frame's
pixel spacing comes from the calibration chain (:func:`pipeline.imaging.calibration.calibrate`):
the DICOM file (its ultrasound region, else PixelSpacing), else the depth scale burned into
the frame (``--tick-mm`` between its interval ticks), else ``--spacing-mm``, else nowhere:
then the diameters are in px only, the output says that mm and the volume need a spacing,
and the command still succeeds. A multi-frame file is refused: a measurement is made on one
chosen frame per plane.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from pipeline.cli.common import Precision, PrecisionChoice, check_spacing_options, load_segmenter, one_line_errors
from pipeline.imaging.calibration import SPACING_SOURCES, Calibration, calibrate
from pipeline.imaging.depth_scale import TICK_MM
from pipeline.imaging.frames import Frame, FrameReadError, read_frames
from pipeline.inference.contract import THRESHOLD_RANGE
from pipeline.inference.gland_size import GLAND_CLASS, PSA_DENSITY_THRESHOLD, Caliper, Spacing, prostate_volume
from pipeline.layout import MODEL_FILE

if TYPE_CHECKING:
    from pipeline.inference.predictor import Segmenter


@dataclass(frozen=True)
class PlaneInput:
    """One plane's frame to measure.

    Attributes:
        file: the frame's file, as given.
        mask: (H, W) bool gland mask at the frame's size.
        calibration: its pixel spacing and where it came from.
    """

    file: str
    mask: np.ndarray
    calibration: Calibration

    @property
    def spacing_mm(self) -> Spacing | None:
        """(x, y) mm per px, or None."""
        return self.calibration.spacing_mm


def check_options(psa: float | None, psa_threshold: float, spacing_mm: float | None,
                  tick_mm: float = TICK_MM) -> None:
    """Raises ValueError naming the option unless --psa >= 0 and --psa-threshold, --spacing-mm, --tick-mm > 0
    (all finite)."""
    if psa is not None and not (math.isfinite(psa) and psa >= 0):
        raise ValueError(f"--psa must be a finite number >= 0, got {psa}")
    if not (math.isfinite(psa_threshold) and psa_threshold > 0):
        raise ValueError(f"--psa-threshold must be a finite number > 0, got {psa_threshold}")
    check_spacing_options(spacing_mm, tick_mm)


def read_single_frame(path: Path) -> Frame:
    """The only frame of a file.

    Raises:
        FrameReadError: missing, unreadable, or holding several frames (a cine loop), naming the file.
    """
    frames = list(read_frames(path))
    if len(frames) > 1:
        raise FrameReadError(f"{path}: {len(frames)} frames; trus measure takes one frame per plane "
                             "(save the frame to measure as a file of its own)")
    return frames[0]


def gland_index(classes: tuple[str, ...], model: Path) -> int:
    """The model's output channel named ``gland``; raises ValueError naming the model when it has none."""
    if GLAND_CLASS not in classes:
        raise ValueError(f"{model}: the model has no '{GLAND_CLASS}' class (its classes: {', '.join(classes)}); "
                         "trus measure needs a gland segmentation")
    return classes.index(GLAND_CLASS)


def gland_mask(segmenter: Segmenter, frame: Frame, path: Path, threshold: float | None) -> np.ndarray:
    """(H, W) bool gland mask of a frame; raises ValueError naming the file when it is empty."""
    threshold = segmenter.contract.threshold if threshold is None else threshold
    masks = segmenter.segment(frame.gray, frame.region_box).masks(threshold)
    mask = masks[gland_index(segmenter.classes, segmenter.path)]
    if not mask.any():
        raise ValueError(f"{path}: no gland found on this frame (the model's gland mask is empty)")
    return mask


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def caliper_record(caliper: Caliper) -> dict:
    """A caliper as JSON: ``px``, ``mm`` (null without spacing) and ``start_xy``/``end_xy`` frame px."""
    return {"px": _rounded(caliper.length_px), "mm": _rounded(caliper.length_mm),
            "start_xy": [_rounded(v) for v in caliper.start_xy], "end_xy": [_rounded(v) for v in caliper.end_xy]}


def measure_masks(transverse: PlaneInput, sagittal: PlaneInput, psa: float | None = None,
                  psa_threshold: float = PSA_DENSITY_THRESHOLD) -> dict:
    """The measurement of two gland masks, as the JSON object ``trus measure --json`` prints.

    Keys: ``transverse`` (file, spacing_mm, spacing_source: a key of
    :data:`~pipeline.imaging.calibration.SPACING_SOURCES`, spacing_note: how it was found or
    why there is none, width, height), ``sagittal`` (the same with length, and height: a
    second estimate), ``width_mm``,
    ``height_mm``, ``length_mm`` (null without spacing), ``volume_ml`` and ``volume_note``
    (why the volume is null), ``psa`` (null without --psa; else psa_ng_per_ml,
    density_ng_per_ml_per_cc and reaches_threshold, null without a volume, and threshold).
    Lengths in mm and px to 3 decimals, the density to 4.

    Raises:
        ValueError: an empty mask, a bad spacing or PSA (see :func:`prostate_volume`).
    """
    result = prostate_volume(transverse.mask, transverse.spacing_mm, sagittal.mask, sagittal.spacing_mm,
                             psa, psa_threshold)

    def plane(given: PlaneInput, calipers: dict[str, Caliper]) -> dict:
        spacing = None if given.spacing_mm is None else [round(value, 6) for value in given.spacing_mm]
        return {"file": given.file, "spacing_mm": spacing, "spacing_source": given.calibration.source,
                "spacing_note": given.calibration.note,
                **{name: caliper_record(caliper) for name, caliper in calipers.items()}}

    density = None
    if psa is not None:
        known = result.psa  # None without a volume
        density = {"psa_ng_per_ml": psa, "density_ng_per_ml_per_cc": None if known is None else round(known.density, 4),
                   "threshold": psa_threshold, "reaches_threshold": None if known is None else known.reaches_threshold}
    return {"transverse": plane(transverse, {"width": result.width, "height": result.height}),
            "sagittal": plane(sagittal, {"length": result.length, "height": result.sagittal.minor}),
            "width_mm": _rounded(result.width.length_mm), "height_mm": _rounded(result.height.length_mm),
            "length_mm": _rounded(result.length.length_mm), "volume_ml": _rounded(result.volume_ml),
            "volume_note": result.volume_note, "psa": density}


def _length(record: dict) -> str:
    px = f"{record['px']:.1f} px"
    return f"{record['mm']:.1f} mm ({px})" if record["mm"] is not None else f"{px} (no mm: no pixel spacing)"


def report_text(report: dict) -> str:
    """The report of :func:`measure_masks` as the lines ``trus measure`` prints."""
    lines = []
    for name in ("transverse", "sagittal"):
        plane = report[name]
        spacing = plane["spacing_mm"]
        said = f"none ({plane['spacing_note']})" if spacing is None else (
            f"{spacing[0]:.4g} x {spacing[1]:.4g} mm/px from {SPACING_SOURCES[plane['spacing_source']]}")
        lines.append(f"{name} frame: {plane['file']}; spacing: {said}")
    lines += [f"width  (transverse, largest extent):  {_length(report['transverse']['width'])}",
              f"height (transverse, perpendicular):   {_length(report['transverse']['height'])}",
              f"length (sagittal, largest extent):    {_length(report['sagittal']['length'])}",
              f"height (sagittal, second estimate):   {_length(report['sagittal']['height'])}"]
    if report["volume_ml"] is not None:
        lines.append(f"volume: {report['volume_ml']:.1f} mL (ellipsoid: pi/6 x length x width x height)")
    else:
        lines.append(f"volume: unknown; {report['volume_note']}. Give --spacing-mm MM_PER_PX (or --tick-mm when "
                     "the depth scale's ticks are not 1 cm apart), or DICOM frames with an ultrasound region")
    psa = report["psa"]
    if psa is not None and psa["density_ng_per_ml_per_cc"] is not None:
        verdict = "reaches" if psa["reaches_threshold"] else "is below"
        lines.append(f"PSA density: {psa['density_ng_per_ml_per_cc']:.3f} ng/mL/cc (PSA {psa['psa_ng_per_ml']:g} "
                     f"ng/mL); {verdict} the threshold {psa['threshold']:g}")
    elif psa is not None:
        lines.append("PSA density: unknown (it needs the volume)")
    return "\n".join(lines)


def measure_files(segmenter: Segmenter, transverse: Path, sagittal: Path, psa: float | None = None,
                  psa_threshold: float = PSA_DENSITY_THRESHOLD, spacing_mm: float | None = None,
                  threshold: float | None = None, tick_mm: float = TICK_MM) -> dict:
    """Segments a transverse and a sagittal frame file and measures their gland masks (see :func:`measure_masks`).

    Raises:
        ValueError: a bad option, a missing, unreadable or multi-frame file, a model without
            a gland class, or no gland on a frame; the message names the file or option.
    """
    check_options(psa, psa_threshold, spacing_mm, tick_mm)
    frames = {path: read_single_frame(path) for path in (transverse, sagittal)}  # every file read before segmenting
    planes = []
    for path, frame in frames.items():
        calibration = calibrate(frame.gray, frame.spacing_mm, tick_mm, spacing_mm)
        planes.append(PlaneInput(str(path), gland_mask(segmenter, frame, path, threshold), calibration))
    return measure_masks(planes[0], planes[1], psa, psa_threshold)


def measure(
    transverse: Annotated[Path, typer.Argument(help="A transverse frame (PNG, JPEG, BMP, TIFF or DICOM).")],
    sagittal: Annotated[Path, typer.Argument(help="A sagittal frame of the same gland.")],
    model: Annotated[Path, typer.Option(help="Exported ONNX model with a 'gland' class.")] = MODEL_FILE,
    psa: Annotated[float | None, typer.Option("--psa", help="Serum PSA, ng/mL: prints the PSA density.")] = None,
    psa_threshold: Annotated[float, typer.Option(help="PSA density threshold, ng/mL/cc.")] = PSA_DENSITY_THRESHOLD,
    spacing_mm: Annotated[float | None, typer.Option(
        "--spacing-mm", help="mm per pixel (square pixels) for frames without a DICOM spacing or a readable "
                             "depth scale.")] = None,
    tick_mm: Annotated[float, typer.Option(
        "--tick-mm", help="mm between the depth scale's interval (longer) ticks.")] = TICK_MM,
    threshold: Annotated[float | None, typer.Option(min=THRESHOLD_RANGE[0], max=THRESHOLD_RANGE[1],
                                                    help="Probability threshold (default: the model's).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")] = False,
    precision: Precision = PrecisionChoice.auto,
) -> None:
    """Measure the gland: width and height (transverse), length (sagittal), volume in mL, PSA density."""
    with one_line_errors():
        check_options(psa, psa_threshold, spacing_mm, tick_mm)
        report = measure_files(load_segmenter(model, precision), transverse, sagittal, psa, psa_threshold, spacing_mm,
                               threshold, tick_mm)
    typer.echo(json.dumps(report, indent=2) if json_output else report_text(report))
