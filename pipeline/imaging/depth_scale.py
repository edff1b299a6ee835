"""Pixel spacing read from the depth scale a scanner burns in beside the fan.

Most scanners draw a ruler of short horizontal tick marks next to the sector, one every
centimetre of depth, often with shorter (minor) ticks between the centimetre (major)
ones and a number beside each major tick. :func:`read_depth_scale` finds that ruler and
turns the distance between its ticks into mm per px:

1. Bright marks outside the fan (the fan from :func:`pipeline.imaging.fan.detect_fan`):
   grey levels above Otsu's threshold of the pixels outside the fan, and at least
   ``MIN_CONTRAST`` above their median (the black margin).
2. Tick candidates: 8-connected marks no taller than about 0.8% of the frame's height, at
   least as wide as tall and at most 6% of its width (digits, text and markers are taller).
3. A ruler: candidates whose left ends (ticks drawn rightwards) or right ends (leftwards)
   line up within ``ALIGN_PX``. When their lengths fall in two groups (the longer at least
   ``MAJOR_RATIO`` times the shorter), the long ones are the interval ticks; otherwise
   every tick is.
4. The gaps between interval ticks, against their median: a gap agrees when it is a whole
   number of median gaps (a hidden tick is skipped) within ``GAP_TOLERANCE``. More than
   ``MAX_DISAGREEING`` of the gaps disagreeing is a refusal; so are fewer than
   ``MIN_TICKS`` interval ticks. The gap is then the least-squares slope of the ticks'
   rows against their whole-number positions on the ruler (sub-pixel).

Of several readable candidate rulers the one with the most ticks wins: with ticks drawn
leftwards the minor ones alone also line up (at their left ends), but the whole ruler,
aligned at the right ends, holds them and the interval ticks. The spacing is along
the depth axis (rows); the frame's pixels are taken to be square, as scanners show them.
The interval (``tick_mm``, 10 mm by default) is a setting, since scanners differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.imaging.fan import Fan, detect_fan

TICK_MM = 10.0  # the default interval between interval (major) ticks, mm
MIN_CONTRAST = 40  # grey levels a mark stands above the black margin's median
ALIGN_PX = 2  # ticks of one ruler start (or end) within this many px of one another
MAJOR_RATIO = 1.4  # major ticks are at least this many times longer than minor ones
MIN_TICKS = 3  # interval ticks needed (two gaps)
MIN_GAP_PX = 4.0  # closer ticks cannot be told apart from thick ones
GAP_TOLERANCE = 0.05  # a gap agrees within this fraction of the median gap (at least 1 px)
MAX_DISAGREEING = 0.10  # refuse when more than this share of the gaps disagree


class DepthScaleError(ValueError):
    """No usable depth scale on the frame; the message says why."""


@dataclass(frozen=True)
class DepthScale:
    """A depth scale read from a frame.

    Attributes:
        mm_per_px: the pixel spacing, mm per px (> 0), along the depth axis.
        tick_mm: the interval between interval ticks it assumed, mm.
        gap_px: the fitted distance between consecutive interval ticks, px.
        rows: the interval ticks' centre rows, px, top to bottom.
        column: x px where the ruler's ticks start (drawn rightwards) or end (leftwards).
        minor_ticks: shorter ticks found between the interval ticks (0: one tick length).
        disagreeing: gaps between interval ticks that are not a whole number of ``gap_px``.
    """

    mm_per_px: float
    tick_mm: float
    gap_px: float
    rows: tuple[float, ...]
    column: int
    minor_ticks: int
    disagreeing: int

    @property
    def summary(self) -> str:
        """One line: how the spacing was read."""
        minor = f" and {self.minor_ticks} minor" if self.minor_ticks else ""
        return (f"depth scale at x {self.column}: {len(self.rows)} ticks{minor}, {self.gap_px:.2f} px per "
                f"{self.tick_mm:g} mm")


@dataclass(frozen=True)
class _Ruler:
    scale: DepthScale | None
    ticks: int  # ticks in the column (interval and minor)
    reason: str


def _bright_marks(gray: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """(H, W) uint8 0/1: pixels outside the fan that stand out from the black margin.

    Args:
        gray: (H, W) uint8 frame.
        outside: (H, W) uint8 0/1, 1 outside the fan (at least one pixel).
    """
    values = gray[outside.view(bool)]
    black = float(np.median(values))
    otsu, _ = cv2.threshold(values.reshape(1, -1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = max(float(otsu), black + MIN_CONTRAST)
    _, brighter = cv2.threshold(gray, level, 1, cv2.THRESH_BINARY)  # grey > level: uint8 is compared to floor(level)
    return cv2.bitwise_and(brighter, outside)


def tick_candidates(gray: np.ndarray, fan_mask: np.ndarray) -> np.ndarray:
    """Short horizontal marks outside the fan.

    Args:
        gray: (H, W) uint8 frame.
        fan_mask: (H, W) bool, True inside the ultrasound fan (not searched).

    Returns:
        (N, 4) float64 rows of (left x, right x, centre row, length) px, one per mark.
    """
    height, width = gray.shape
    dilated = cv2.dilate(np.asarray(fan_mask, bool).view(np.uint8), np.ones((5, 5), np.uint8))
    outside = (dilated == 0).view(np.uint8)
    if not outside.any():
        return np.empty((0, 4))
    marks = _bright_marks(gray, outside)
    # 16-bit labels (half the memory to write) whenever the marks cannot hold 65535 components
    label_type = cv2.CV_16U if cv2.countNonZero(marks) < 65535 else cv2.CV_32S
    count, _, stats, centroids = cv2.connectedComponentsWithStats(marks, connectivity=8, ltype=label_type)
    max_height, max_length = max(3, round(0.008 * height)), max(8, round(0.06 * width))
    rows = []
    for index in range(1, count):
        x, _, w, h, area = stats[index]
        if h <= max_height and h <= w <= max_length and w >= 2 and area >= 0.5 * w * h:
            rows.append((x, x + w - 1, centroids[index][1], w))
    return np.array(rows, float).reshape(-1, 4)


def _merge_rows(ticks: np.ndarray) -> np.ndarray:
    """Ticks sorted by row, pieces of one tick (rows within 1.5 px) merged into the longest."""
    ticks = ticks[np.argsort(ticks[:, 2])]
    merged: list[np.ndarray] = []
    for tick in ticks:
        if merged and tick[2] - merged[-1][2] <= 1.5:
            if tick[3] > merged[-1][3]:
                merged[-1] = tick
            continue
        merged.append(tick)
    return np.array(merged)


def _interval_ticks(lengths: np.ndarray) -> np.ndarray:
    """bool per tick: an interval (major) tick; all of them when the lengths do not fall in two groups."""
    ordered = np.sort(lengths)
    ratios = ordered[1:] / ordered[:-1]
    if len(ordered) < 2 or ratios.max() < MAJOR_RATIO:
        return np.ones(len(lengths), bool)
    split = ordered[int(np.argmax(ratios)) + 1]
    return lengths >= split


def _ruler(ticks: np.ndarray, column: int, tick_mm: float) -> _Ruler:
    """The depth scale one group of aligned ticks makes, or why it makes none."""
    ticks = _merge_rows(ticks)
    major = _interval_ticks(ticks[:, 3])
    rows = ticks[major, 2]
    if len(rows) < MIN_TICKS:
        return _Ruler(None, len(ticks), f"{len(rows)} interval tick(s) in a column; at least {MIN_TICKS} needed")
    gaps = np.diff(rows)
    median = float(np.median(gaps))
    if median < MIN_GAP_PX:
        return _Ruler(None, len(ticks), f"ticks {median:.1f} px apart; at least {MIN_GAP_PX:g} px needed")
    steps = np.maximum(np.round(gaps / median), 1)
    agree = np.abs(gaps - steps * median) <= max(GAP_TOLERANCE * median, 1.0)
    disagreeing = int((~agree).sum())
    if disagreeing > MAX_DISAGREEING * len(gaps):
        return _Ruler(None, len(ticks), f"{disagreeing} of {len(gaps)} gaps between ticks disagree with "
                                              f"their median {median:.1f} px (more than {MAX_DISAGREEING:.0%})")
    positions = np.concatenate([[0.0], np.cumsum(steps)])
    gap_px = float(np.polyfit(positions, rows, 1)[0])
    scale = DepthScale(mm_per_px=tick_mm / gap_px, tick_mm=tick_mm, gap_px=gap_px,
                       rows=tuple(float(r) for r in rows), column=column, minor_ticks=int((~major).sum()),
                       disagreeing=disagreeing)
    return _Ruler(scale, len(ticks), "")


def read_depth_scale(gray: np.ndarray, tick_mm: float = TICK_MM, fan_mask: np.ndarray | None = None,
                     fan: Fan | None = None) -> DepthScale:
    """Reads the pixel spacing from the depth scale beside the fan (see the module's docstring).

    Args:
        gray: (H, W) uint8 grey frame (colour overlays converted to grey).
        tick_mm: the depth between interval ticks, mm, > 0 (1 cm on most scanners).
        fan_mask: (H, W) bool ultrasound fan; taken from ``fan``, else found with :func:`detect_fan`, when None.
        fan: the frame's fan when already detected (saves detecting it twice), or None.

    Returns:
        The scale; ``mm_per_px`` is the spacing, square pixels assumed.

    Raises:
        ValueError: ``gray`` is not a 2-D uint8 image or ``tick_mm`` is not > 0.
        DepthScaleError: no fan, no ruler of aligned ticks, or a ruler whose gaps disagree;
            the message says which.
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"a depth scale is read from a 2-D uint8 grey frame, got {gray.dtype} {gray.shape}")
    if not (np.isfinite(tick_mm) and tick_mm > 0):
        raise ValueError(f"the depth scale's tick interval must be > 0 mm, got {tick_mm}")
    if fan_mask is None:
        fan = fan if fan is not None else detect_fan(gray)
        if not fan.found:
            raise DepthScaleError("no ultrasound fan found, so no depth scale beside it")
        fan_mask = fan.mask
    ticks = tick_candidates(gray, fan_mask)
    if len(ticks) < MIN_TICKS:
        raise DepthScaleError(f"no depth scale: {len(ticks)} tick-like mark(s) outside the fan")
    best = _Ruler(None, -1, f"{len(ticks)} tick-like marks outside the fan, no {MIN_TICKS} of them lined up "
                            f"in one column")
    tried: set[tuple[int, int]] = set()
    for side in (0, 1):  # 0: ticks drawn rightwards (left ends aligned), 1: leftwards (right ends)
        for edge in np.unique(ticks[:, side].astype(int)):
            members = np.abs(ticks[:, side] - edge) <= ALIGN_PX
            key = (side, hash(members.tobytes()))
            if members.sum() < MIN_TICKS or key in tried:
                continue
            tried.add(key)
            ruler = _ruler(ticks[members], int(edge), tick_mm)
            if (ruler.scale is not None, ruler.ticks) > (best.scale is not None, best.ticks):
                best = ruler  # a readable ruler beats any unreadable one; then the one with the most ticks
    if best.scale is None:
        raise DepthScaleError(f"no depth scale: {best.reason}")
    return best.scale
