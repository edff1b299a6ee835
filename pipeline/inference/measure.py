"""Measurements and pictures of a segmentation, shared by the CLI, evaluation and the app."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# RGB colours per output channel, in order (gland green, lesion red, then others).
CLASS_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 220, 90), (255, 60, 60), (60, 140, 255), (255, 200, 0), (200, 80, 255), (0, 220, 220),
)


@dataclass(frozen=True)
class ClassArea:
    """Area of one class's mask.

    Attributes:
        name: class name.
        pixels: number of mask pixels in the original frame.
        mm2: area in mm^2, or None when the frame's pixel spacing is unknown.
    """

    name: str
    pixels: int
    mm2: float | None


def class_areas(masks: np.ndarray, classes: tuple[str, ...] | list[str],
                spacing_mm: tuple[float, float] | None) -> list[ClassArea]:
    """Areas of each class mask.

    Args:
        masks: (C, H, W) bool masks at the original frame size.
        classes: the C class names.
        spacing_mm: (x, y) pixel spacing in mm, or None.
    """
    areas = []
    for name, mask in zip(classes, masks):
        pixels = int(np.count_nonzero(mask))
        mm2 = pixels * spacing_mm[0] * spacing_mm[1] if spacing_mm else None
        areas.append(ClassArea(name, pixels, mm2))
    return areas


def colour_for(index: int) -> tuple[int, int, int]:
    """RGB colour of output channel ``index``."""
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


TABLE_CLASSES = 8
"""Up to this many masks, :func:`draw_overlay` blends through a table (2**C x 256 colours, indexed by 16 bits);
above, pixel by pixel."""


def draw_overlay(gray: np.ndarray, masks: np.ndarray, opacity: float = 0.35,
                 colours: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """Blends class masks over a grey frame and outlines them.

    Each class in turn tints its pixels: ``(1 - opacity) * value + opacity * colour`` in
    float32 (a pixel under several classes is tinted by each, in class order), then the result
    is rounded to uint8 and every class's outer outline drawn over it, opaque and antialiased.
    Only the masks' bounding boxes are worked on; a blended pixel depends only on its grey
    level and the set of classes over it, so up to :data:`TABLE_CLASSES` masks it is looked up
    in a table of those values (:func:`_blend_table`), computed with the same float32 steps.

    Args:
        gray: (H, W) uint8 frame.
        masks: (C, H, W) bool masks of the same size.
        opacity: fill opacity in [0, 1]; outlines are drawn opaque.
        colours: RGB per class, 0-255; defaults to :data:`CLASS_COLOURS`.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    out = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    palette = [np.float32(colours[index] if colours else colour_for(index)) for index in range(len(masks))]
    boxes = [_mask_box(mask) for mask in masks]
    present = [box for box in boxes if box is not None]
    if present:
        union = (slice(min(box[0].start for box in present), max(box[0].stop for box in present)),
                 slice(min(box[1].start for box in present), max(box[1].stop for box in present)))
        blend = _blend_by_table if len(masks) <= TABLE_CLASSES else _blend_by_pixel
        out[union] = blend(gray[union], _in_box(masks, boxes, union), opacity, palette)
    thickness = max(1, round(max(gray.shape) / 400))
    for mask, box, colour in zip(masks, boxes, palette):
        if box is None:
            continue
        rows, columns = _grown(box, mask.shape)  # a background border: the outline as on the whole frame
        contours, _ = cv2.findContours(mask[rows, columns].view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                       offset=(columns.start, rows.start))
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), thickness, lineType=cv2.LINE_AA)
    return out


Box = tuple[slice, slice]


def _mask_box(mask: np.ndarray) -> Box | None:
    """(rows, columns) slices of a (H, W) bool mask's bounding box, or None for an empty mask."""
    x, y, w, h = cv2.boundingRect(np.asarray(mask, bool).view(np.uint8))
    return None if w == 0 else (slice(y, y + h), slice(x, x + w))


def _grown(box: Box, shape: tuple[int, ...]) -> Box:
    """``box`` grown by 1 px on each side, within a (H, W) frame."""
    return (slice(max(0, box[0].start - 1), min(shape[0], box[0].stop + 1)),
            slice(max(0, box[1].start - 1), min(shape[1], box[1].stop + 1)))


def _in_box(masks: np.ndarray, boxes: list[Box | None], union: Box) -> list[tuple[Box, np.ndarray] | None]:
    """Each mask's box relative to ``union`` and its (h, w) bool pixels there; None for an empty mask."""
    within = []
    for mask, box in zip(masks, boxes):
        if box is None:
            within.append(None)
            continue
        local = (slice(box[0].start - union[0].start, box[0].stop - union[0].start),
                 slice(box[1].start - union[1].start, box[1].stop - union[1].start))
        within.append((local, np.asarray(mask[box], bool)))
    return within


def _blend_table(opacity: float, palette: list[np.ndarray]) -> np.ndarray:
    """(2**C * 256,) uint32: entry ``code * 256 + g`` holds the R, G, B bytes (then a 0) of grey level g tinted by
    the classes of ``code``'s bits.

    Bit c of ``code`` is class c; the tints apply in class order, in float32 as in the pixel-by-pixel
    blend (:func:`_blend_by_pixel`), so the values are the same to the bit. Four bytes an entry:
    NumPy gathers them much faster than three.
    """
    table = np.empty((1 << len(palette), 256, 3), np.float32)
    table[0] = np.arange(256, dtype=np.float32)[:, None]
    for code in range(1, len(table)):
        last = code.bit_length() - 1  # the highest class is tinted last
        table[code] = (1.0 - opacity) * table[code & ~(1 << last)] + opacity * palette[last]
    packed = np.zeros((len(table) * 256, 4), np.uint8)
    packed[:, :3] = np.clip(np.rint(table), 0, 255).astype(np.uint8).reshape(-1, 3)
    return packed.view(np.uint32).ravel()


def _blend_by_table(gray: np.ndarray, masks: list[tuple[Box, np.ndarray] | None], opacity: float,
                    palette: list[np.ndarray]) -> np.ndarray:
    """The (h, w, 3) uint8 blend of a (h, w) uint8 box of the frame (at most 8 masks), looked up in
    :func:`_blend_table` by ``code * 256 + grey``."""
    index = gray.astype(np.uint16)
    for bit, entry in enumerate(masks):
        if entry is not None:
            box, pixels = entry
            within = index[box]
            within |= pixels.view(np.uint8).astype(np.uint16) << np.uint16(8 + bit)
    rgbx = _blend_table(opacity, palette).take(index).view(np.uint8).reshape(*gray.shape, 4)
    return cv2.cvtColor(rgbx, cv2.COLOR_RGBA2RGB)  # drops the fourth byte


def _blend_by_pixel(gray: np.ndarray, masks: list[tuple[Box, np.ndarray] | None], opacity: float,
                    palette: list[np.ndarray]) -> np.ndarray:
    """The (h, w, 3) uint8 blend of a (h, w) uint8 box of the frame, in float32 pixel by pixel."""
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB).astype(np.float32)
    for entry, colour in zip(masks, palette):
        if entry is not None:
            box, pixels = entry
            region = rgb[box]
            region[pixels] = (1.0 - opacity) * region[pixels] + opacity * colour
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
