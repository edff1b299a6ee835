"""Frame geometry: crop box + resize + padding, forwards and back.

A :class:`FrameGeometry` is recorded for every frame, so any mask predicted on the
square network input maps back onto the original frame's pixels, and measurements
can be converted to millimetres.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

INTERPOLATION_FLAGS = {
    # pixel-centre aligned like the other modes (plain INTER_NEAREST is off by up to half a source pixel)
    "nearest": cv2.INTER_NEAREST_EXACT,
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}


@dataclass(frozen=True)
class FrameGeometry:
    """Where the network input's pixels come from in the original frame.

    Attributes:
        frame_width, frame_height: original frame size, px.
        crop_x, crop_y, crop_width, crop_height: the crop box in original px (inside the frame).
        size: side of the square network input, px.
        content_width, content_height: size of the resized crop inside the input, px.
        pad_left, pad_top: zero padding before the content, px.
    """

    frame_width: int
    frame_height: int
    crop_x: int
    crop_y: int
    crop_width: int
    crop_height: int
    size: int
    content_width: int
    content_height: int
    pad_left: int
    pad_top: int

    @property
    def scale_x(self) -> float:
        """Network px per original px along x."""
        return self.content_width / self.crop_width

    @property
    def scale_y(self) -> float:
        """Network px per original px along y."""
        return self.content_height / self.crop_height

    @property
    def input_area_px(self) -> float:
        """The network's square input mapped back onto the original frame: its area in original px
        (size² / (scale_x scale_y); the crop's own area when the crop fills the square)."""
        return self.size * self.size / (self.scale_x * self.scale_y)

    def network_spacing_mm(self, spacing_mm: tuple[float, float] | None) -> tuple[float, float] | None:
        """The physical size of one network pixel, (x, y) in mm, from the original frame's spacing.

        Args:
            spacing_mm: (x, y) mm per original pixel, or None when unknown.

        Returns:
            (x, y) mm per network pixel (original spacing / scale), or None when unknown.
        """
        if spacing_mm is None:
            return None
        return spacing_mm[0] / self.scale_x, spacing_mm[1] / self.scale_y

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/CSV friendly), with the derived scales."""
        return {**dataclasses.asdict(self), "scale_x": self.scale_x, "scale_y": self.scale_y}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FrameGeometry:
        """Inverse of :meth:`to_dict` (derived keys are ignored)."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: int(values[name]) for name in names})


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    """Clips an (x, y, w, h) box to a width x height frame.

    Raises:
        ValueError: the box does not overlap the frame.
    """
    x, y, w, h = (int(round(v)) for v in box)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"crop box {box} lies outside the {width}x{height} frame")
    return x0, y0, x1 - x0, y1 - y0


def plan_geometry(frame_width: int, frame_height: int, box: tuple[int, int, int, int], size: int,
                  resize: str) -> FrameGeometry:
    """Plans the crop -> resize -> pad mapping for one frame.

    Args:
        frame_width, frame_height: original frame size, px.
        box: crop box (x, y, w, h), clipped to the frame here.
        size: square output side, px.
        resize: ``letterbox`` (keep aspect, pad centred) or ``stretch``.
    """
    x, y, w, h = clip_box(box, frame_width, frame_height)
    if resize == "stretch":
        content_w, content_h = size, size
    else:
        scale = min(size / w, size / h)
        content_w = min(size, max(1, round(w * scale)))
        content_h = min(size, max(1, round(h * scale)))
    return FrameGeometry(frame_width, frame_height, x, y, w, h, size, content_w, content_h,
                         (size - content_w) // 2, (size - content_h) // 2)


def to_network_grid(array: np.ndarray, geometry: FrameGeometry, interpolation: str) -> np.ndarray:
    """Crops, resizes and pads an original-frame array onto the square grid.

    Args:
        array: (H, W) or (H, W, C) array at the original frame size (bool allowed, C <= 4).
        geometry: from :func:`plan_geometry` for this frame.
        interpolation: a key of ``INTERPOLATION_FLAGS`` (``nearest`` for masks).

    Returns:
        (size, size[, C]) array of the same dtype, zero outside the content.
    """
    g = geometry
    crop = np.ascontiguousarray(array[g.crop_y:g.crop_y + g.crop_height, g.crop_x:g.crop_x + g.crop_width])
    resized = cv2.resize(crop.view(np.uint8) if crop.dtype == bool else crop, (g.content_width, g.content_height),
                         interpolation=INTERPOLATION_FLAGS[interpolation])
    if resized.ndim < array.ndim:  # cv2 drops a trailing channel axis of length 1
        resized = resized[..., None]
    out = np.zeros((g.size, g.size) + array.shape[2:], dtype=array.dtype)
    out[g.pad_top:g.pad_top + g.content_height, g.pad_left:g.pad_left + g.content_width] = resized
    return out


def to_original_frame(array: np.ndarray, geometry: FrameGeometry, interpolation: str = "linear") -> np.ndarray:
    """Maps a network-grid array back onto the original frame (inverse of :func:`to_network_grid`).

    Args:
        array: (size, size) or (size, size, C) array, e.g. probabilities in [0, 1].
        geometry: the frame's geometry.
        interpolation: ``linear`` for probabilities, ``nearest`` for label masks.

    Returns:
        (frame_height, frame_width[, C]) array, zero outside the crop box.
    """
    g = geometry
    content = array[g.pad_top:g.pad_top + g.content_height, g.pad_left:g.pad_left + g.content_width]
    resized = cv2.resize(np.ascontiguousarray(content), (g.crop_width, g.crop_height),
                         interpolation=INTERPOLATION_FLAGS[interpolation])
    if resized.ndim < array.ndim:  # cv2 drops a trailing channel axis of length 1
        resized = resized[..., None]
    out = np.zeros((g.frame_height, g.frame_width) + array.shape[2:], dtype=array.dtype)
    out[g.crop_y:g.crop_y + g.crop_height, g.crop_x:g.crop_x + g.crop_width] = resized
    return out


def probabilities_to_original_frame(probabilities: np.ndarray, geometry: FrameGeometry) -> np.ndarray:
    """Per-class network probabilities mapped back onto the original frame (bilinear).

    The one place where a prediction leaves the network grid: the CLI, the app and
    evaluation all call it, so a mask means the same thing everywhere.

    Args:
        probabilities: (C, size, size) float32 in [0, 1] on the network grid.
        geometry: the frame's geometry.

    Returns:
        (C, frame_height, frame_width) float32 in [0, 1], zero outside the crop box.
    """
    g = geometry
    content = probabilities[:, g.pad_top:g.pad_top + g.content_height, g.pad_left:g.pad_left + g.content_width]
    # resized channels last, as one image (per channel, OpenCV's bilinear differs in the last bits), as in
    # to_original_frame; only the crop box is then moved to channels first
    resized = cv2.resize(np.ascontiguousarray(content.transpose(1, 2, 0)), (g.crop_width, g.crop_height),
                         interpolation=INTERPOLATION_FLAGS["linear"])
    if resized.ndim == 2:  # cv2 drops a trailing channel axis of length 1
        resized = resized[..., None]
    out = np.zeros((probabilities.shape[0], g.frame_height, g.frame_width), probabilities.dtype)
    out[:, g.crop_y:g.crop_y + g.crop_height, g.crop_x:g.crop_x + g.crop_width] = resized.transpose(2, 0, 1)
    return out
