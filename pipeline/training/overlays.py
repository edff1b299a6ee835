"""Burned-in graphics over a training frame: what scanners and sonographers draw on the image.

Real frames carry graphics inside the image, not only in the margins the fan crop removes:
measurement ellipses traced around the gland, caliper crosses and the dotted line between them,
labels and annotations typed on the image, body markers, icons and translucent logos. The
network should neither take them for anatomy nor lose the anatomy under them. This step
draws a few such shapes at random over the image only; the mask keeps the anatomy's truth.

:func:`draw_overlays` makes every random choice and :func:`burn_in` draws them without drawing
anything random, as the rest of :mod:`pipeline.training.augment` does.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.augment_spec import OverlayAugment

OVERLAY_KINDS = ("ellipse", "cross", "dotted_line", "text", "translucent")
_LABEL_CHARACTERS = string.ascii_uppercase + string.digits + ".:+-"
_FONT_HEIGHT_PX = 22.0  # height of a capital of cv2.FONT_HERSHEY_SIMPLEX at scale 1


@dataclass(frozen=True)
class Overlay:
    """One graphic, in fractions of the frame side so that it scales with the frame.

    Attributes:
        kind: one of :data:`OVERLAY_KINDS`: an ellipse outline (a measurement trace), a caliper cross,
            a dotted line, a text label, or a translucent filled ellipse with a solid rim (a logo, an icon).
        centre: (x, y) fractions of the side, 0..1.
        size: half-extent, fraction of the side: the ellipse's first semi-axis, the cross's arm, half the
            line's length, the text's height.
        aspect: second semi-axis / first (ellipses), 0.2..1.
        angle_deg: orientation, degrees.
        grey: the graphic's grey level, 0..255.
        alpha: opacity of a translucent fill, 0..1 (the rim and every other kind are opaque).
        text: the label's characters (``text`` only).
    """

    kind: str
    centre: tuple[float, float]
    size: float
    aspect: float = 1.0
    angle_deg: float = 0.0
    grey: int = 255
    alpha: float = 1.0
    text: str = ""


def draw_overlays(rng: np.random.Generator, params: OverlayAugment) -> tuple[Overlay, ...]:
    """1..``params.count`` graphics, kinds uniform, anywhere in the frame.

    Sizes are uniform from 0.02 of the side up to ``params.max_size``; grey levels from 160 to 255 (graphics
    are bright on the dark image, as most scanners draw them); translucent fills 0.2..0.5 opaque.
    """
    overlays = []
    for _ in range(int(rng.integers(1, params.count + 1))):
        kind = OVERLAY_KINDS[int(rng.integers(len(OVERLAY_KINDS)))]
        centre = (float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.0, 1.0)))
        size = float(rng.uniform(0.02, params.max_size))
        label = "".join(rng.choice(list(_LABEL_CHARACTERS), int(rng.integers(2, 9)))) if kind == "text" else ""
        overlays.append(Overlay(kind, centre, size, aspect=float(rng.uniform(0.2, 1.0)),
                                angle_deg=float(rng.uniform(0.0, 180.0)), grey=int(rng.integers(160, 256)),
                                alpha=float(rng.uniform(0.2, 0.5)), text=label))
    return tuple(overlays)


def burn_in(image: np.ndarray, overlays: tuple[Overlay, ...]) -> np.ndarray:
    """The image with the graphics drawn over it: 1 px lines of hard pixels (text edges as OpenCV draws them).

    Args:
        image: (S, S) uint8 grey.
        overlays: from :func:`draw_overlays`.

    Returns:
        A new (S, S) uint8 grey image; ``image`` is not changed.
    """
    out = image.copy()
    side = image.shape[0]
    for overlay in overlays:
        centre = (round(overlay.centre[0] * side), round(overlay.centre[1] * side))
        extent = max(1, round(overlay.size * side))
        if overlay.kind == "ellipse":
            axes = (extent, max(1, round(extent * overlay.aspect)))
            cv2.ellipse(out, centre, axes, overlay.angle_deg, 0, 360, overlay.grey, 1)
        elif overlay.kind == "cross":
            arm = max(2, extent // 4)
            cv2.line(out, (centre[0] - arm, centre[1]), (centre[0] + arm, centre[1]), overlay.grey, 1)
            cv2.line(out, (centre[0], centre[1] - arm), (centre[0], centre[1] + arm), overlay.grey, 1)
        elif overlay.kind == "dotted_line":
            _dotted_line(out, centre, extent, overlay.angle_deg, overlay.grey)
        elif overlay.kind == "text":
            scale = max(0.2, extent / _FONT_HEIGHT_PX)  # capitals ``extent`` px tall, the origin at their foot
            cv2.putText(out, overlay.text, centre, cv2.FONT_HERSHEY_SIMPLEX, scale, overlay.grey, 1)
        elif overlay.kind == "translucent":
            axes = (extent, max(1, round(extent * overlay.aspect)))
            fill = np.zeros_like(out)
            cv2.ellipse(fill, centre, axes, overlay.angle_deg, 0, 360, 255, -1)
            inside = fill > 0
            out[inside] = np.rint(out[inside] * (1.0 - overlay.alpha) + overlay.grey * overlay.alpha).astype(np.uint8)
            cv2.ellipse(out, centre, axes, overlay.angle_deg, 0, 360, overlay.grey, 1)
        else:
            raise ValueError(f"unknown overlay kind {overlay.kind!r}; expected one of {', '.join(OVERLAY_KINDS)}")
    return out


def _dotted_line(image: np.ndarray, centre: tuple[int, int], half_length: int, angle_deg: float, grey: int) -> None:
    """Dots 2 px wide every 6 px along a line through ``centre``, drawn in place."""
    direction = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    for step in range(-half_length, half_length + 1, 6):
        x, y = np.rint(np.asarray(centre) + step * direction).astype(int)
        cv2.rectangle(image, (int(x), int(y)), (int(x) + 1, int(y) + 1), grey, -1)
