"""Calibrating the review flag of a trained model on the validation frames (run by the export stage).

For each validation frame whose truth has a gland, the model's gland probabilities are mapped
back to the frame, as inference maps them, and give the border uncertainty
(:func:`pipeline.inference.review.review_signal`) and, after the threshold and the
post-processing, the gland Dice against the truth. :func:`pipeline.inference.review.calibrate_review`
turns the pairs into the threshold the contract stores.
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from pipeline.config import Params
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import FrameGeometry, probabilities_to_original_frame
from pipeline.imaging.masks import read_bitmask, unpack_masks
from pipeline.inference.gland_size import GLAND_CLASS
from pipeline.inference.postprocess import postprocess_masks
from pipeline.inference.review import ReviewSpec, calibrate_review, review_signal
from pipeline.layout import FRAMES_DIR, IMAGES, MASKS, PROCESSED_DIR
from pipeline.training.predict import evaluation_device, predict_outputs


def review_pairs(model: nn.Module, frame_ids: list[str], table: pd.DataFrame,
                 params: Params) -> tuple[list[float], list[float]]:
    """(border uncertainty, gland Dice) of each frame with a gland in its truth and in the model's raw mask.

    Args:
        model: the trained network (eval mode is set here).
        frame_ids: the frames, e.g. the validation subset.
        table: the preprocess manifest indexed by frame id (geometry columns).
        params: data.classes, model.mean/std, inference threshold, post-processing and flips.
    """
    classes, threshold = params.data.classes, params.inference.threshold
    gland = classes.index(GLAND_CLASS)
    uncertainties, dices, device = [], [], evaluation_device()
    for frame_id in frame_ids:
        truth = unpack_masks(read_bitmask(FRAMES_DIR / MASKS / f"{frame_id}.png"), len(classes))[gland]
        if not truth.any():
            continue
        processed = read_frame(PROCESSED_DIR / IMAGES / f"{frame_id}.png").gray
        probabilities, _ = predict_outputs(model, processed[None], params.model.mean, params.model.std, device=device,
                                           flips=params.inference.flips)
        geometry = FrameGeometry.from_dict(table.loc[frame_id].to_dict())
        original = probabilities_to_original_frame(probabilities[0], geometry)
        signal = review_signal(original[gland], threshold)
        if signal.uncertainty is None:
            continue  # no gland, or one filling the frame: flagged anyway
        predicted = postprocess_masks(original > threshold, classes, params.inference.postprocess,
                                      geometry.input_area_px)[gland]
        dices.append(2.0 * float((predicted & truth).sum()) / float(predicted.sum() + truth.sum()))
        uncertainties.append(signal.uncertainty)
    return uncertainties, dices


def calibrated_review(model: nn.Module, frame_ids: list[str], table: pd.DataFrame, params: Params) -> ReviewSpec | None:
    """The review threshold calibrated on ``frame_ids``; None without a gland class or without a usable frame."""
    if GLAND_CLASS not in params.data.classes:
        return None
    uncertainties, dices = review_pairs(model, frame_ids, table, params)
    if not uncertainties:
        return None
    return calibrate_review(uncertainties, dices, params.export.review_dice_floor)


def describe_review(spec: ReviewSpec | None) -> str:
    """One line for the stage's output."""
    if spec is None:
        return "review flag: not calibrated (no validation frame with a gland); only absent or broken glands flagged"
    rates = ", ".join(f"{name} {value:.2f}" for name, value in (("sensitivity", spec.sensitivity),
                                                              ("specificity", spec.specificity)) if value is not None)
    return (f"review flag: border uncertainty > {spec.uncertainty:.4f}, calibrated on {spec.frames} validation "
            f"frames ({spec.needing_review} with gland Dice < {spec.dice_floor:g}){'; ' + rates if rates else ''}")



