"""Boundary-weighted binary cross-entropy: pixels near the truth's edge weigh more.

For each frame and class, the truth boundary is the set of mask pixels with at least one
4-neighbour outside the mask (the inner contour, the same surface the HD95 metric measures).
The frame's own edge is not a boundary: a mask cut by the frame is not outlined there. With
d the Euclidean distance in px from a pixel's centre to the nearest boundary pixel's centre
(0 on the boundary, 1 just outside it), the pixel weight is

    w = 1 + w0 * exp(-d^2 / (2 sigma^2))

(as the border term of Ronneberger et al.'s U-Net weight map, whose w0 = 10, sigma = 5 px
are the defaults). A class absent from a frame (no boundary) weighs 1 everywhere, and so
does a mask filling the whole frame. The weights come from the targets alone, on the CPU.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

FOUR_NEIGHBOURS = ndimage.generate_binary_structure(2, 1)


def boundary_distance(mask: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the mask's boundary.

    Args:
        mask: (H, W) bool truth of one class in one frame.

    Returns:
        (H, W) float64 Euclidean distance in px between pixel centres, 0 on the boundary;
        ``inf`` everywhere when the mask has no boundary (empty, or the whole frame).
    """
    boundary = mask & ~ndimage.binary_erosion(mask, structure=FOUR_NEIGHBOURS, border_value=1)
    if not boundary.any():
        return np.full(mask.shape, np.inf)
    return ndimage.distance_transform_edt(~boundary)


def boundary_weights(targets: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """Pixel weights ``1 + w0 * exp(-d^2 / (2 sigma^2))`` for a batch of truth masks.

    Args:
        targets: (N, C, H, W) bool truth.
        w0: extra weight on the boundary, >= 0.
        sigma: fall-off distance, px, > 0.

    Returns:
        (N, C, H, W) float32 weights in [1, 1 + w0].
    """
    weights = np.ones(targets.shape, np.float32)
    for frame, channel in np.ndindex(*targets.shape[:2]):
        distance = boundary_distance(targets[frame, channel])
        weights[frame, channel] += w0 * np.exp(-distance ** 2 / (2.0 * sigma ** 2))
    return weights


class BoundaryBCELoss(nn.Module):
    """``mean over N, C, H, W of w * BCE(logit, truth)``, w from :func:`boundary_weights` (multilabel)."""

    def __init__(self, w0: float, sigma: float) -> None:
        """``train.loss.boundary_bce.w0`` (>= 0) and ``.sigma`` (px, > 0); w0 = 0 is plain BCE."""
        super().__init__()
        self.w0, self.sigma = w0, sigma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss of (N, C, H, W) logits against (N, C, H, W) float 0/1 targets."""
        weights = boundary_weights(targets.detach().cpu().numpy() > 0.5, self.w0, self.sigma)
        pixel_losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        return (torch.from_numpy(weights).to(pixel_losses) * pixel_losses).mean()
