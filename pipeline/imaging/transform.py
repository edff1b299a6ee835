"""The one preprocessing implementation: original frame -> network input, and back.

Used by the preprocess stage, evaluation, the ``trus`` CLI and the desktop app, so the
network sees identical input in training and in the clinic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.imaging.diffusion import apply_filter
from pipeline.imaging.fan import detect_fan_box
from pipeline.imaging.geometry import FrameGeometry, plan_geometry, to_network_grid
from pipeline.imaging.spec import PreprocessSpec


@dataclass(frozen=True)
class ProcessedFrame:
    """A frame as the network sees it.

    Attributes:
        image: (size, size) uint8 grey, cropped, resized, padded and filtered.
        geometry: how to map it back onto the original frame.
    """

    image: np.ndarray
    geometry: FrameGeometry


def crop_box_for(gray: np.ndarray, spec: PreprocessSpec) -> tuple[int, int, int, int]:
    """The crop box (x, y, w, h) in original px that ``spec`` selects for this frame."""
    height, width = gray.shape
    if spec.crop == "auto":
        return detect_fan_box(gray)
    if spec.crop == "box":
        assert spec.crop_box is not None  # validated by PreprocessSpec
        return spec.crop_box
    return 0, 0, width, height


def preprocess_frame(gray: np.ndarray, spec: PreprocessSpec) -> ProcessedFrame:
    """Crop -> resize (letterbox or stretch) -> diffusion filter.

    Args:
        gray: (H, W) uint8 grey frame at its original size.
        spec: the preprocessing spec (params.yaml or ONNX metadata).

    Returns:
        The processed (size, size) uint8 image and its geometry.

    Raises:
        ValueError: the frame is not 2-D uint8, or the crop box misses the frame.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grey frame, got {gray.dtype} {gray.shape}")
    geometry = plan_geometry(gray.shape[1], gray.shape[0], crop_box_for(gray, spec), spec.size, spec.resize)
    resized = to_network_grid(gray, geometry, spec.interpolation)
    return ProcessedFrame(apply_filter(resized, spec.filter), geometry)


def preprocess_mask(mask: np.ndarray, geometry: FrameGeometry) -> np.ndarray:
    """Maps an original-size label mask onto the network grid (nearest neighbour).

    Args:
        mask: (H, W) or (H, W, C) integer/bool mask at the original frame size.
        geometry: the frame's geometry from :func:`preprocess_frame`.

    Returns:
        (size, size[, C]) mask of the same dtype.
    """
    return to_network_grid(mask, geometry, "nearest")


def network_input(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Normalises processed uint8 images into the model's input tensor.

    Args:
        images: (size, size) or (N, size, size) uint8 processed images.
        mean, std: normalisation of [0, 1] grey values.

    Returns:
        (N, 1, size, size) float32, (x / 255 - mean) / std.
    """
    batch = images[None] if images.ndim == 2 else images
    scaled = batch.astype(np.float32) / np.float32(255.0)
    return ((scaled - np.float32(mean)) / np.float32(std))[:, None]
