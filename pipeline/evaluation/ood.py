"""Out-of-distribution check: the deployed model on frames of scanners that training never saw.

For each scanner variant of the sample generator (:mod:`pipeline.synthetic.variants`) a small
synthetic export is rendered from one seed, so every variant shows the same patients; it is
read back through the ingest's COCO reader (the truth masks by the readers' own rule), each
frame is segmented by :class:`~pipeline.inference.predictor.Segmenter` as the app does it
(the original frame in, the model's own preprocessing, threshold and post-processing), and
scored by the evaluate stage's functions (:mod:`pipeline.evaluation.scoring`). For a model
with a plane output each variant also gets the plane accuracy, the truth being the plane the
generator writes into every file name (``P001_F02_sagittal.png``, read with
``data.plane_pattern``). Torch-free.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.evaluation.scoring import UNKNOWN_PLANE, frame_plane_accuracy, frame_rows, summarise
from pipeline.imaging.frames import read_frame
from pipeline.inference.predictor import Segmenter
from pipeline.ingest.coco import read_coco_export
from pipeline.planes import plane_from_name
from pipeline.synthetic import VARIANT_NAMES, SampleSpec, write_sample_export
from pipeline.synthetic.roboflow_coco import CATEGORIES

GENERATOR_CLASSES = tuple(category["name"] for category in CATEGORIES if category["supercategory"] != "none")
"""The classes the sample generator annotates (``gland``, ``lesion``)."""


@dataclass(frozen=True)
class VariantRun:
    """One variant's frames, scored.

    Attributes:
        variant: the scanner variant's name.
        per_frame: one row per frame and class (:func:`pipeline.evaluation.scoring.frame_rows`).
        render_s: seconds to render and write its export.
        segment_s: seconds to read, segment and score its frames.
    """

    variant: str
    per_frame: pd.DataFrame
    render_s: float
    segment_s: float


def check_ood_request(variants: Sequence[str], classes: Sequence[str], model: Path) -> None:
    """Raises ValueError unless every variant exists and the generator annotates every model class.

    Args:
        variants: names from ``ood.variants``.
        classes: the model's output classes.
        model: the model file, for the message.
    """
    unknown = [name for name in variants if name not in VARIANT_NAMES]
    if unknown:
        raise ValueError(f"ood.variants: unknown scanner variant(s) {', '.join(unknown)}; "
                         f"expected among {', '.join(VARIANT_NAMES)}")
    missing = [name for name in classes if name not in GENERATOR_CLASSES]
    if missing:
        raise ValueError(f"{model}: class(es) {', '.join(missing)} are not drawn by the sample generator "
                         f"({', '.join(GENERATOR_CLASSES)}); the ood stage cannot score them")


def score_export(segmenter: Segmenter, export_root: Path, plane_pattern: str | None) -> pd.DataFrame:
    """Segments every frame of a COCO export as the app does and scores it against the export's masks.

    Args:
        segmenter: the deployed model.
        export_root: a COCO Segmentation export (here the sample generator's).
        plane_pattern: ``data.plane_pattern``: the frame's true plane from its original name.

    Returns:
        One row per frame and model class (:func:`pipeline.evaluation.scoring.frame_rows`),
        the patient being the original name up to its first ``_`` (``P001`` of ``P001_F02.png``),
        with ``plane`` (from the name, ``unknown`` where it says none) and ``predicted_plane``
        (the model's most probable plane, ``""`` without a plane output).
    """
    classes = segmenter.classes
    rows: list[dict] = []
    for exported in read_coco_export(export_root, classes):
        frame = read_frame(exported.image_path)
        segmentation = segmenter.segment(frame.gray, frame.region_box)
        planes = {"plane": plane_from_name(exported.name.original_name, plane_pattern) or UNKNOWN_PLANE,
                  "predicted_plane": segmentation.plane or ""}
        rows += [{**row, **planes} for row in frame_rows(
            exported.name.frame_id, exported.name.original_stem.split("_")[0],
            segmentation.masks(segmenter.contract.threshold), exported.masks(len(classes)), classes,
            frame.spacing_mm)]
    return pd.DataFrame(rows)


def run_variant(segmenter: Segmenter, variant: str, seed: int, spec: SampleSpec, work_dir: Path,
                plane_pattern: str | None) -> VariantRun:
    """Renders one variant's export into ``work_dir/<variant>`` and scores the model on it.

    Args:
        segmenter: the deployed model.
        variant: a scanner variant name.
        seed: the sample seed (the same for every variant: the same patients).
        spec: patients and frames; its ``variant`` is replaced by ``variant``.
        work_dir: an existing temporary folder.
        plane_pattern: ``data.plane_pattern`` (:func:`score_export`).
    """
    started = time.perf_counter()
    root = work_dir / variant
    write_sample_export(root, seed, SampleSpec(n_patients=spec.n_patients, frames_per_patient=spec.frames_per_patient,
                                               variant=variant))
    rendered = time.perf_counter()
    per_frame = score_export(segmenter, root, plane_pattern)
    return VariantRun(variant, per_frame, rendered - started, time.perf_counter() - rendered)


def _difference(value: float | None, reference: float | None) -> float | None:
    """``value - reference`` rounded to 4 decimals, or None when either is missing."""
    if value is None or reference is None or math.isnan(value) or math.isnan(reference):
        return None
    return round(value - reference, 4)


def variant_summary(per_frame: pd.DataFrame, classes: Sequence[str],
                    reference: Mapping[str, Mapping[str, float | None]]) -> dict:
    """A variant's per-class summary, each with its Dice difference to the in-distribution test.

    Args:
        per_frame: the variant's rows (:func:`score_export`).
        classes: the model's classes.
        reference: ``reports/metrics.json``'s ``test`` summary (per class, with ``dice``).

    Returns:
        ``{"frames": n, "plane_accuracy": a, "plane_frames": k, <class>: {<the evaluate stage's
        summary>, "dice_minus_test": d}}``; d is None when either Dice is missing, a and k as
        in ``reports/metrics.json`` (None without a plane output).
    """
    summary = summarise(per_frame, classes)
    report: dict = {"frames": int(per_frame["frame_id"].nunique()) if len(per_frame) else 0,
                    **(frame_plane_accuracy(per_frame) if len(per_frame) else
                       {"plane_accuracy": None, "plane_frames": None})}
    for name in classes:
        test_dice = reference.get(name, {}).get("dice")
        report[name] = {**summary[name], "dice_minus_test": _difference(summary[name]["dice"], test_dice)}
    return report


def ood_report(runs: Sequence[VariantRun], classes: Sequence[str], reference: Mapping[str, Mapping],
               settings: Mapping[str, object]) -> dict:
    """The content of ``reports/ood.json``.

    Args:
        runs: the scored variants, in report order.
        classes: the model's classes.
        reference: the in-distribution ``test`` summary of ``reports/metrics.json``.
        settings: what was run (model, seed, patients, frames per patient, threshold), copied in.

    Returns:
        ``settings``, ``in_distribution`` (the reference), ``variants`` (per variant, see
        :func:`variant_summary`) and ``worst`` (per class, the variant with the lowest Dice
        and its difference to the test Dice; ``plane``: the variant with the lowest plane
        accuracy, for a model with a plane output).
    """
    variants = {run.variant: variant_summary(run.per_frame, classes, reference) for run in runs}
    worst = {}
    for name in classes:
        scored = [(report[name]["dice"], variant) for variant, report in variants.items()
                  if report[name]["dice"] is not None]
        if scored:
            dice, variant = min(scored)
            worst[name] = {"variant": variant, "dice": dice, "dice_minus_test": variants[variant][name]["dice_minus_test"]}
    planes = [(report["plane_accuracy"], variant) for variant, report in variants.items()
              if report["plane_accuracy"] is not None]
    if planes:
        accuracy, variant = min(planes, key=lambda pair: pair[0])  # on a tie, the first in report order
        worst["plane"] = {"variant": variant, "plane_accuracy": accuracy}
    return {**settings, "in_distribution": {name: dict(reference.get(name, {})) for name in classes},
            "variants": variants, "worst": worst}


def plot_table(report: Mapping, classes: Sequence[str]) -> pd.DataFrame:
    """The DVC bar-chart data: one row per variant (and first the in-distribution test), Dice per class.

    Args:
        report: :func:`ood_report`'s result.
        classes: the model's classes.

    Returns:
        Columns ``variant`` and one per class (Dice in [0, 1], empty when undefined).
    """
    rows = [{"variant": "test (in distribution)",
             **{name: report["in_distribution"].get(name, {}).get("dice") for name in classes}}]
    rows += [{"variant": variant, **{name: scores[name]["dice"] for name in classes}}
             for variant, scores in report["variants"].items()]
    return pd.DataFrame(rows, columns=["variant", *classes])
