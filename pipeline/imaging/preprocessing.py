"""The one preprocessing implementation: original frame -> network input, and back.

Used by the preprocess stage, evaluation, the ``trus`` CLI and the desktop app, so the
network sees identical input in training and in the clinic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.imaging.diffusion import apply_filter
from pipeline.imaging.fan import Fan, detect_fan
from pipeline.imaging.geometry import FrameGeometry, clip_box, plan_geometry, to_network_grid
from pipeline.imaging.spec import PreprocessSpec

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class ProcessedFrame:
    """A frame as the network sees it.

    Attributes:
        image: (size, size) uint8 grey, cropped, resized, padded and filtered.
        geometry: how to map it back onto the original frame.
    """

    image: np.ndarray
    geometry: FrameGeometry


def needs_fan(spec: PreprocessSpec, region_box: Box | None = None) -> bool:
    """True when ``spec`` needs the frame's detected fan (``auto`` crop, zeroing, or ``dicom`` without a region)."""
    return spec.crop == "auto" or spec.zero_outside_fan or (spec.crop == "dicom" and region_box is None)


def crop_box_for(gray: np.ndarray, spec: PreprocessSpec, region_box: Box | None = None,
                 fan: Fan | None = None) -> Box:
    """The crop box (x, y, w, h) in original px that ``spec`` selects for this frame.

    Args:
        gray: (H, W) uint8 grey frame.
        spec: the preprocessing spec.
        region_box: the frame's DICOM ultrasound region (x, y, w, h) px (``Frame.region_box``),
            or None; ``crop: dicom`` clips it to the frame and, without one, falls back to ``auto``.
        fan: the frame's fan when already detected (saves detecting it twice).

    Raises:
        ValueError: a ``dicom`` region that misses the frame.
    """
    height, width = gray.shape
    if spec.crop == "dicom" and region_box is not None:
        return clip_box(region_box, width, height)
    if spec.crop in ("auto", "dicom"):
        return (fan or detect_fan(gray)).box
    if spec.crop == "box":
        assert spec.crop_box is not None  # validated by PreprocessSpec
        return spec.crop_box
    return 0, 0, width, height


def preprocess_frame(gray: np.ndarray, spec: PreprocessSpec, *, region_box: Box | None = None,
                     fan: Fan | None = None) -> ProcessedFrame:
    """Zero outside the fan (optional) -> crop -> resize (letterbox or stretch) -> diffusion filter.

    Deterministic: the same frame, spec and region give the same bytes wherever this runs.

    Args:
        gray: (H, W) uint8 grey frame at its original size.
        spec: the preprocessing spec (params.yaml or ONNX metadata).
        region_box: the frame's DICOM ultrasound region (x, y, w, h) px, from
            ``Frame.region_box``; used by ``crop: dicom`` only (None: ``auto`` instead).
        fan: the frame's fan when already detected (saves detecting it twice), or None.

    Returns:
        The processed (size, size) uint8 image and its geometry.

    Raises:
        ValueError: the frame is not 2-D uint8, or the crop box misses the frame.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grey frame, got {gray.dtype} {gray.shape}")
    if needs_fan(spec, region_box):
        fan = fan if fan is not None else detect_fan(gray)
    if spec.zero_outside_fan and fan is not None and fan.found:
        gray = np.where(fan.mask, gray, np.uint8(0))
    box = crop_box_for(gray, spec, region_box, fan)
    geometry = plan_geometry(gray.shape[1], gray.shape[0], box, spec.size, spec.resize)
    resized = to_network_grid(gray, geometry, spec.interpolation)
    return ProcessedFrame(apply_filter(resized, spec.filter), geometry)


def preprocess_mask(mask: np.ndarray, geometry: FrameGeometry) -> np.ndarray:
    """Maps an original-size label mask onto the network grid (nearest neighbour).

    Nearest neighbour with pixel-centre alignment (``cv2.INTER_NEAREST_EXACT``, as in PIL
    and scikit-image), like the image's area/linear/cubic/lanczos resize, so labels stay
    on their pixels.

    Args:
        mask: (H, W) or (H, W, C) integer/bool mask at the original frame size, C <= 4.
        geometry: the frame's geometry from :func:`preprocess_frame`.

    Returns:
        (size, size[, C]) mask of the same dtype, zero in the padding.
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
