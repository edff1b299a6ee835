"""The INT8 model's accuracy gate: it must give the float model's masks and scores on the test frames.

Both models run through the product's runtime (:class:`pipeline.inference.predictor.Segmenter`)
on the same preprocessed test frames; their probabilities are mapped back onto the original
frames, thresholded and post-processed as inference does, then compared two ways:

- **agreement** per class: the Dice between the INT8 and the float masks, pooled over the
  frames (twice the summed intersections over the summed areas; 1 when both are empty on
  every frame), at least ``min_mask_dice``;
- **drop** of each reported test metric that is a fraction, higher-better (per class ``dice``
  and ``iou`` of :func:`pipeline.evaluation.scoring.summarise`, and the plane accuracy when
  both models classify the plane): float minus INT8, at most ``max_metric_drop``. The surface
  distances (HD95, ASSD, in px or mm) are reported by the evaluate stage, not gated here: a
  drop "of 0.01" has no meaning in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.evaluation.scoring import frame_rows, summarise
from pipeline.imaging.geometry import FrameGeometry
from pipeline.inference.contract import PostprocessSpec
from pipeline.inference.postprocess import postprocess_masks
from pipeline.inference.predictor import PreparedFrame, Segmenter

GATED_METRICS = ("dice", "iou")


@dataclass(frozen=True)
class GateFrame:
    """A test frame as the gate needs it.

    Attributes:
        frame_id, patient: identity (copied into the score rows).
        image: (S, S) uint8 preprocessed frame (the preprocess stage's output).
        geometry: its crop and resize, to map the output back onto the original frame.
        truth: (C, H, W) bool truth masks at the original size.
        plane: the frame's labelled plane, or None.
    """

    frame_id: str
    patient: str
    image: np.ndarray
    geometry: FrameGeometry
    truth: np.ndarray
    plane: str | None = None


@dataclass(frozen=True)
class GateResult:
    """The gate's figures and verdict.

    Attributes:
        mask_dice: class -> pooled Dice between the INT8 and the float masks, in [0, 1].
        metric_drop: ``<class>.<metric>`` (and ``plane_accuracy``) -> float minus INT8 value;
            positive: INT8 is worse.
        frames: the test frames compared.
        min_mask_dice, max_metric_drop: the limits applied.
    """

    mask_dice: dict[str, float]
    metric_drop: dict[str, float]
    frames: int
    min_mask_dice: float
    max_metric_drop: float

    @property
    def failures(self) -> list[str]:
        """One line per figure outside its limit ("lesion: INT8 and fp32 masks agree with Dice 0.981 < 0.99")."""
        lines = [f"{name}: INT8 and fp32 masks agree with Dice {value:.4f} < {self.min_mask_dice}"
                 for name, value in self.mask_dice.items() if not value >= self.min_mask_dice]
        lines += [f"{name}: INT8 scores {value:.4f} lower than fp32 (> {self.max_metric_drop})"
                  for name, value in self.metric_drop.items() if not value <= self.max_metric_drop]
        return lines

    @property
    def passed(self) -> bool:
        """Whether every figure is within its limit."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (rounded to 6 digits) with the verdict."""
        return {"passed": self.passed, "frames": self.frames, "min_mask_dice": self.min_mask_dice,
                "max_metric_drop": self.max_metric_drop, "failures": self.failures,
                "mask_dice": {name: round(value, 6) for name, value in self.mask_dice.items()},
                "metric_drop": {name: round(value, 6) for name, value in self.metric_drop.items()}}


def pooled_dice(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> float:
    """Dice of two mask sequences pooled over the frames: 2 sum|A & B| / (sum|A| + sum|B|); 1.0 when all are empty.

    Args:
        reference, candidate: the same number of bool masks, pairwise of equal shape.
    """
    intersection = sum(int(np.count_nonzero(a & b)) for a, b in zip(reference, candidate, strict=True))
    total = sum(int(np.count_nonzero(a)) + int(np.count_nonzero(b)) for a, b in zip(reference, candidate, strict=True))
    return 1.0 if total == 0 else 2.0 * intersection / total


def metric_drops(reference: Mapping[str, Mapping[str, Any]], candidate: Mapping[str, Mapping[str, Any]],
                 metrics: Sequence[str] = GATED_METRICS) -> dict[str, float]:
    """``<class>.<metric>`` -> reference minus candidate, for each class and metric both define (not None/NaN).

    Args:
        reference, candidate: :func:`pipeline.evaluation.scoring.summarise` summaries.
        metrics: the higher-better fractions to compare.
    """
    drops = {}
    for name, scores in reference.items():
        for metric in metrics:
            before, after = scores.get(metric), candidate.get(name, {}).get(metric)
            if before is None or after is None or math.isnan(before) or math.isnan(after):
                continue
            drops[f"{name}.{metric}"] = float(before) - float(after)
    return drops


def _masks_and_plane(model: Segmenter, frame: GateFrame, threshold: float,
                     postprocess: PostprocessSpec) -> tuple[np.ndarray, str | None]:
    """(C, H, W) bool post-processed masks of ``model`` on ``frame``, and its most probable plane (None without)."""
    segmentation = model.segment_prepared(PreparedFrame(frame.image, frame.geometry))
    masks = postprocess_masks(segmentation.probabilities > threshold, model.classes, postprocess,
                              segmentation.geometry.input_area_px)
    return masks, segmentation.plane


def _plane_accuracy(frames: Sequence[GateFrame], planes: Sequence[str | None]) -> float | None:
    """The fraction of frames of a known plane whose predicted plane is right; None without any."""
    pairs = [(frame.plane, plane) for frame, plane in zip(frames, planes) if frame.plane and plane]
    return None if not pairs else sum(truth == plane for truth, plane in pairs) / len(pairs)


def run_gate(float_model: Segmenter, int8_model: Segmenter, frames: Sequence[GateFrame], threshold: float,
             postprocess: PostprocessSpec, min_mask_dice: float, max_metric_drop: float) -> GateResult:
    """Runs both models on ``frames`` and judges the INT8 one.

    Args:
        float_model, int8_model: the two runtimes (the same classes, in the same order).
        frames: the test frames, at least one.
        threshold, postprocess: inference's (``inference`` in params.yaml).
        min_mask_dice, max_metric_drop: the limits (``export.int8``).

    Raises:
        ValueError: no frame, or the models' classes differ.
    """
    if not frames:
        raise ValueError("the INT8 gate needs at least one test frame")
    classes = float_model.classes
    if int8_model.classes != classes:
        raise ValueError(f"the INT8 model's classes {int8_model.classes} differ from the float model's {classes}")
    masks: dict[str, list[np.ndarray]] = {"fp32": [], "int8": []}
    planes: dict[str, list[str | None]] = {"fp32": [], "int8": []}
    rows: dict[str, list[dict]] = {"fp32": [], "int8": []}
    for frame in frames:
        for key, model in (("fp32", float_model), ("int8", int8_model)):
            predicted, plane = _masks_and_plane(model, frame, threshold, postprocess)
            masks[key].append(predicted)
            planes[key].append(plane)
            rows[key] += frame_rows(frame.frame_id, frame.patient, predicted, frame.truth, classes, None)
    agreement = {name: pooled_dice([m[index] for m in masks["fp32"]], [m[index] for m in masks["int8"]])
                 for index, name in enumerate(classes)}
    drops = metric_drops(summarise(pd.DataFrame(rows["fp32"]), classes), summarise(pd.DataFrame(rows["int8"]), classes))
    accuracy = {key: _plane_accuracy(frames, planes[key]) for key in planes}
    if accuracy["fp32"] is not None and accuracy["int8"] is not None:
        drops["plane_accuracy"] = accuracy["fp32"] - accuracy["int8"]
    return GateResult(agreement, drops, len(frames), min_mask_dice, max_metric_drop)
