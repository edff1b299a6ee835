"""The ultrasound sector (fan) of a synthetic frame: its geometry, raster and beam grid.

Conventions: x grows to the right and y downwards, in frame pixels. A beam is addressed
by its radius ``r`` from the sector apex (px) and its angle ``theta`` from the fan's
axis (radians, positive towards image right). The axis points down the frame when the
probe is at the top (``direction`` +1) and up the frame when it is at the bottom (-1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FanGeometry:
    """The ultrasound sector, in frame pixels.

    Attributes:
        apex_x: x of the sector apex (virtual probe centre), px.
        apex_y: y of the sector apex, px.
        r_inner: radius of the transducer face (the fan's arc nearest the probe), px.
        r_outer: radius of the fan's far arc, px.
        half_angle: half the opening angle, radians, in (0, pi/2] (a field of view up to 180 deg).
        depth_cm: displayed imaging depth from ``r_inner`` to ``r_outer``, cm.
        direction: +1 when the fan opens downwards (probe at the top), -1 when it opens
            upwards (probe at the bottom).
    """

    apex_x: float
    apex_y: float
    r_inner: float
    r_outer: float
    half_angle: float
    depth_cm: float
    direction: int = 1

    @property
    def px_per_cm(self) -> float:
        """Display scale along a beam, px per cm."""
        return (self.r_outer - self.r_inner) / self.depth_cm

    def point(self, r: float, theta: float) -> tuple[float, float]:
        """Frame (x, y) px of the beam point at radius ``r`` px and angle ``theta`` rad."""
        return self.apex_x + r * float(np.sin(theta)), self.apex_y + self.direction * r * float(np.cos(theta))


def polar(fan: FanGeometry, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r px, theta rad) of frame points (x, y) px, relative to the fan's apex and axis."""
    dx, dy = x - fan.apex_x, (y - fan.apex_y) * fan.direction
    return np.hypot(dx, dy), np.arctan2(dx, dy)


def inside_fan(points: np.ndarray, fan: FanGeometry, margin: float) -> bool:
    """True when every (x, y) point of an (N, 2) array lies in the fan at least ``margin`` px from its border."""
    r, theta = polar(fan, points[:, 0], points[:, 1])
    return bool(np.all((r >= fan.r_inner + margin) & (r <= fan.r_outer - margin)
                       & (r * np.sin(fan.half_angle - np.abs(theta)) >= margin)))


def beam_shape(fan: FanGeometry) -> tuple[int, int]:
    """(radii, angles) of the beam grid: 1.3 px axial and 2 px lateral (at the far arc) spacing."""
    return int(fan.r_outer / 1.3) + 2, int(2 * fan.half_angle * fan.r_outer / 2.0) + 2


@functools.lru_cache(maxsize=4)
def beam_maps(fan: FanGeometry, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read-only fixed-point ``cv2.remap`` maps from the beam grid to the frame, and the (H, W) bool fan mask."""
    x = np.arange(width, dtype=np.float32)[None, :] - np.float32(fan.apex_x)
    y = np.arange(height, dtype=np.float32)[:, None] - np.float32(fan.apex_y)
    if fan.direction < 0:
        y = -y
    r, theta = np.sqrt(x * x + y * y), np.arctan2(x, y)
    n_r, n_t = beam_shape(fan)
    map_x = (theta + np.float32(fan.half_angle)) * np.float32((n_t - 1) / (2 * fan.half_angle))
    map_1, map_2 = cv2.convertMaps(map_x, r * np.float32((n_r - 1) / fan.r_outer), cv2.CV_16SC2)
    fan_mask = (r >= fan.r_inner) & (r <= fan.r_outer) & (np.abs(theta) <= fan.half_angle)
    for array in (map_1, map_2, fan_mask):
        array.setflags(write=False)
    return map_1, map_2, fan_mask


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x, y, width, height) px of a non-empty (H, W) bool mask."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return int(x), int(y), int(w), int(h)


@functools.lru_cache(maxsize=4)
def beam_points(fan: FanGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Read-only (n_radii, n_angles) float32 frame x and y px of the beam grid's points (see :func:`beam_shape`)."""
    n_r, n_t = beam_shape(fan)
    r = np.linspace(0.0, fan.r_outer, n_r, dtype=np.float32)[:, None]
    t = np.linspace(-fan.half_angle, fan.half_angle, n_t, dtype=np.float32)[None, :]
    x = (np.float32(fan.apex_x) + r * np.sin(t)).astype(np.float32)
    y = (np.float32(fan.apex_y) + np.float32(fan.direction) * r * np.cos(t)).astype(np.float32)
    for array in (x, y):
        array.setflags(write=False)
    return x, y


def to_beam_grid(fan: FanGeometry, image: np.ndarray) -> np.ndarray:
    """An (H, W) float32 frame image resampled (bilinear, 0 outside the frame) onto the fan's beam grid."""
    x, y = beam_points(fan)
    return cv2.remap(image.astype(np.float32), x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
