"""Burned-in scanner overlays of a synthetic frame: text, depth scale, focus marker, calipers, logos.

The original scanner (variant ``default``) draws grey text in fixed places in the black
margins. Other variants stack their text blocks and icons in whichever frame corners
stay clear of the fan (a wide fan leaves no room at the probe's side), draw in colour,
and put calipers and a translucent logo inside the fan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from pipeline.synthetic.sector import FanGeometry, inside_fan
from pipeline.synthetic.variants import DEFAULT, Variant

FONT = cv2.FONT_HERSHEY_SIMPLEX
GREY = (230, 230, 230)
# BGR colours of the colour variants: block text, depth scale, markers
YELLOW, CYAN, GREEN, ORANGE = (0, 215, 255), (230, 210, 0), (70, 210, 70), (0, 140, 255)


@dataclass
class _Layout:
    """Stacks rectangles (text blocks, icons) from the frame's corners, clear of a keep-out mask.

    Corners are ``tl``, ``bl``, ``tr``, ``br``; left blocks start at ``x_left``, right
    blocks end at ``x_right``. When ``adaptive`` is False the first corner asked for is
    always taken (the original scanner's fixed layout); when no corner is free, so is it
    (a crowded scanner writes over the image).
    """

    keep_out: np.ndarray  # (H, W) uint8, 1 where nothing may be drawn (fan, depth scale)
    x_left: int
    x_right: int
    bottom_margin: int  # px kept free below a block (descenders) and at the frame's bottom
    adaptive: bool
    used: dict[str, int] = field(default_factory=lambda: {"tl": 0, "bl": 0, "tr": 0, "br": 0})
    taken: np.ndarray | None = None  # (H, W) uint8, 1 under blocks already placed

    def __post_init__(self) -> None:
        self.taken = np.zeros_like(self.keep_out)

    def place(self, width: int, height: int, corners: tuple[str, ...]) -> tuple[int, int, str]:
        """Top-left (x, y) px and corner of a width x height rectangle, in the first corner where it fits."""
        for corner in corners:
            x, y = self._origin(width, height, corner)
            if not self.adaptive or self._free(x, y, width, height):
                break
        else:
            corner = corners[0]
            x, y = self._origin(width, height, corner)
        self.used[corner] += height
        self.taken[max(0, y):max(0, y + height), max(0, x):max(0, x + width)] = 1
        return x, y, corner

    def _origin(self, width: int, height: int, corner: str) -> tuple[int, int]:
        x = self.x_left if corner[1] == "l" else self.x_right - width
        y = self.used[corner] if corner[0] == "t" else self.keep_out.shape[0] - self.bottom_margin \
            - self.used[corner] - height
        return x, y

    def _free(self, x: int, y: int, width: int, height: int) -> bool:
        h, w = self.keep_out.shape
        return x >= 0 and y >= 0 and x + width <= w and y + height + self.bottom_margin <= h \
            and not self.keep_out[y:y + height + self.bottom_margin, x:x + width].any() \
            and not self.taken[y:y + height, x:x + width].any()


def draw_overlays(image: np.ndarray, fan: FanGeometry, lines: dict[str, list[str]], fan_mask: np.ndarray,
                  variant: Variant = DEFAULT, gland: np.ndarray | None = None) -> None:
    """Burns scanner text, a depth scale, a focus marker and the variant's extras into a frame, in place.

    Args:
        image: (H, W, 3) uint8 BGR frame, grey B-mode content on black.
        fan: the frame's sector.
        lines: text blocks ``top_left``, ``bottom_left``, ``top_right``, each a list of lines.
        fan_mask: (H, W) bool sector raster; adaptive layouts keep text clear of it.
        variant: the scanner variant (colours, calipers, logos, layout).
        gland: (H, W) bool gland mask, where calipers measure; None or empty: calipers
            at a fixed place in the fan.
    """
    h, w = image.shape[:2]
    scale, thick = h / 1700, max(1, round(h / 700))
    step = int(34 * scale) + 2
    size = max(2, int(0.008 * w))
    adaptive = variant != DEFAULT
    x_scale = depth_scale_x(fan, w, variant)
    keep_out = np.zeros((h, w), np.uint8)
    if adaptive:
        gap = max(3, int(0.02 * w))
        keep_out = cv2.dilate(fan_mask.astype(np.uint8), np.ones((2 * gap + 1, 2 * gap + 1), np.uint8))
        ends = sorted(int(_along_axis(fan, d)) for d in (0.0, fan.r_outer - fan.r_inner))
        keep_out[max(0, ends[0] - step):ends[1] + step, x_scale - 2 * size - gap:] = 1  # the depth scale
    layout = _Layout(keep_out, int(0.012 * w), x_scale - int(0.01 * w), int(0.4 * step), adaptive)
    colours = (CYAN, YELLOW, GREEN, YELLOW, GREEN) if variant.colour else (GREY,) * 5
    top_left = list(lines["top_left"])
    if variant.calipers:
        top_left.append(_calipers(image, fan, gland, YELLOW if variant.colour else GREY, size, thick))

    def put(text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
        cv2.putText(image, text, (x, y), FONT, scale, colour, thick, cv2.LINE_AA)

    def block(texts: list[str], corners: tuple[str, ...], colour: tuple[int, int, int]) -> None:
        widths = [cv2.getTextSize(t, FONT, scale, thick)[0][0] for t in texts]
        x, y, corner = layout.place(max(widths), step * len(texts), corners)
        for i, (text, tw) in enumerate(zip(texts, widths)):  # right blocks are right-aligned
            put(text, x if corner[1] == "l" else x + max(widths) - tw, y + step * (i + 1), colour)

    block(top_left, ("tl", "bl", "br", "tr"), colours[0])
    block(lines["bottom_left"], ("bl", "br", "tl", "tr"), colours[1])
    block(lines["top_right"], ("tr", "br", "tl", "bl"), colours[2])
    for half_cm in range(int(2 * fan.depth_cm) + 1):
        y = int(round(_along_axis(fan, half_cm / 2 * fan.px_per_cm)))
        major = half_cm % 2 == 0
        cv2.line(image, (x_scale, y), (x_scale + int((0.012 if major else 0.006) * w), y), colours[3], thick)
        if major:
            put(str(half_cm // 2), x_scale + int(0.016 * w), y + int(0.3 * step), colours[3])
    y_focus = int(_along_axis(fan, 0.5 * fan.depth_cm * fan.px_per_cm))
    cv2.fillPoly(image, [np.array([[x_scale - 2 * size, y_focus - size], [x_scale - 2 * size, y_focus + size],
                                   [x_scale - size // 2, y_focus]], np.int32)], colours[4])
    if variant.colour:
        x, y, _ = layout.place(4 * size, 4 * size, ("tl", "bl", "tr", "br"))  # orientation marker
        cv2.circle(image, (x + 2 * size, y + 2 * size), int(1.5 * size), GREEN, -1, cv2.LINE_AA)
        put("P", x + int(1.3 * size), y + int(2.7 * size), (0, 0, 0))
    if variant.logo:
        _logo_in_margin(image, layout, scale, thick, ORANGE if variant.colour else (200, 200, 200))
        _logo_in_fan(image, fan, thick)


def depth_scale_x(fan: FanGeometry, width: int, variant: Variant = DEFAULT) -> int:
    """x px where the depth scale's ticks start, beside the fan's right edge.

    The ticks run right from there (0.012 x width long every cm, half that every half cm),
    at the depths of :func:`_along_axis`, ``fan.px_per_cm`` px apart; other scanners than the
    original keep the focus marker, left of the ticks, >= 8 px clear of the fan.
    """
    size = max(2, int(0.008 * width))
    clear = max(0.02 * width, 2 * size + max(8.0, 0.01 * width)) if variant != DEFAULT else 0.02 * width
    return int(fan.apex_x + fan.r_outer * np.sin(fan.half_angle) + clear)


def _along_axis(fan: FanGeometry, depth_px: float) -> float:
    """y px of the point ``depth_px`` beyond the transducer face on the fan's axis."""
    if fan.direction > 0:
        return fan.apex_y + fan.r_inner + depth_px
    return fan.apex_y - fan.r_inner - depth_px


def _calipers(image: np.ndarray, fan: FanGeometry, gland: np.ndarray | None, colour: tuple[int, int, int],
              size: int, thick: int) -> str:
    """Draws two caliper crosses across the gland's widest extent and a dotted line; returns ``D1 x.xxcm``."""
    if gland is not None and gland.any():
        ys, xs = np.nonzero(gland)
        ends = [(float(xs.min() + 2), float(np.mean(ys[xs == xs.min()]))),
                (float(xs.max() - 2), float(np.mean(ys[xs == xs.max()])))]
    else:
        mid = fan.r_inner + 0.5 * (fan.r_outer - fan.r_inner)
        ends = [fan.point(mid, -0.35 * fan.half_angle), fan.point(mid, 0.35 * fan.half_angle)]
    (x0, y0), (x1, y1) = ends
    length = float(np.hypot(x1 - x0, y1 - y0))
    spacing = max(4.0, 1.5 * size)
    for t in np.arange(spacing, length - spacing / 2, spacing) / max(length, 1.0):
        cv2.circle(image, (int(round(x0 + t * (x1 - x0))), int(round(y0 + t * (y1 - y0)))), max(1, thick), colour, -1)
    for x, y in ends:
        cx, cy = int(round(x)), int(round(y))
        cv2.line(image, (cx - size, cy), (cx + size, cy), colour, thick)
        cv2.line(image, (cx, cy - size), (cx, cy + size), colour, thick)
    return f"D1 {length / fan.px_per_cm:.2f}cm"


def _logo_in_margin(image: np.ndarray, layout: _Layout, scale: float, thick: int,
                    colour: tuple[int, int, int]) -> None:
    """A solid manufacturer badge with knocked-out lettering, in a free corner."""
    (tw, th), _ = cv2.getTextSize("SIMSONIC", FONT, scale, thick)
    width, height = tw + 2 * th, 3 * th
    x, y, _ = layout.place(width, height, ("tr", "br", "bl", "tl"))
    cv2.rectangle(image, (x, y), (x + width - 1, y + height - 1), colour, -1)
    cv2.putText(image, "SIMSONIC", (x + th, y + 2 * th), FONT, scale, (0, 0, 0), thick, cv2.LINE_AA)


def _logo_in_fan(image: np.ndarray, fan: FanGeometry, thick: int) -> None:
    """A translucent round logo (35 % white) with a bright ring, inside the fan near the probe."""
    radius = max(5, int(0.04 * fan.r_outer))
    r = fan.r_inner + 0.2 * (fan.r_outer - fan.r_inner)
    for theta in np.linspace(-0.6, 0.0, 7) * fan.half_angle:  # the first spot clear of the fan's border
        cx, cy = fan.point(r, float(theta))
        corners = np.array([[cx - radius, cy - radius], [cx + radius, cy - radius],
                            [cx - radius, cy + radius], [cx + radius, cy + radius]])
        if inside_fan(corners, fan, margin=2.0):
            break
    centre = (int(round(cx)), int(round(cy)))
    x0, y0 = max(0, centre[0] - radius - 2), max(0, centre[1] - radius - 2)
    roi = image[y0:centre[1] + radius + 3, x0:centre[0] + radius + 3]
    badge = roi.copy()
    local = (centre[0] - x0, centre[1] - y0)
    cv2.circle(badge, local, radius, (255, 255, 255), -1, cv2.LINE_AA)
    roi[:] = cv2.addWeighted(badge, 0.35, roi, 0.65, 0.0)
    cv2.circle(roi, local, radius, (240, 240, 240), thick, cv2.LINE_AA)
    letter = max(radius / 22, 0.2)  # Hershey capitals are ~22 px at scale 1
    (lw, lh), _ = cv2.getTextSize("S", FONT, letter, thick)
    cv2.putText(roi, "S", (local[0] - lw // 2, local[1] + lh // 2), FONT, letter, (255, 255, 255), thick, cv2.LINE_AA)
