"""Comparison pictures of evaluation: the prediction filled in class colours, the truth outlined."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.inference.measure import colour_for, draw_overlay

TRUTH_COLOUR = (255, 255, 0)  # RGB, outlines of the ground truth in comparison pictures


def comparison_picture(gray: np.ndarray, predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Prediction filled in class colours, truth outlined in yellow, (H, W, 3) uint8 RGB."""
    picture = draw_overlay(gray, predicted, opacity=0.35)
    thickness = max(1, round(max(gray.shape) / 300))
    for mask in truth:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(picture, contours, -1, TRUTH_COLOUR, thickness, lineType=cv2.LINE_AA)
    return picture


def legend(classes: Sequence[str]) -> str:
    """One-line description of the comparison pictures' colours."""
    names = ", ".join(f"{name} rgb{colour_for(i)}" for i, name in enumerate(classes))
    return f"prediction filled ({names}); truth outlined rgb{TRUTH_COLOUR}"
