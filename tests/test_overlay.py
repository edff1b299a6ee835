"""draw_overlay against the frame-wide float32 blend it replaced: the same bytes on every kind of mask."""

from __future__ import annotations

import zlib

import cv2
import numpy as np
import pytest

from pipeline.inference.measure import TABLE_CLASSES, colour_for, draw_overlay


def reference_overlay(gray: np.ndarray, masks: np.ndarray, opacity: float = 0.35,
                      colours: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """The former draw_overlay, kept as it was: the whole frame in float32, contours on whole masks."""
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB).astype(np.float32)
    outlines = []
    for index, mask in enumerate(masks):
        colour = np.float32(colours[index] if colours else colour_for(index))
        rgb[mask] = (1.0 - opacity) * rgb[mask] + opacity * colour
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        outlines.append((contours, tuple(int(c) for c in colour)))
    out = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    thickness = max(1, round(max(gray.shape) / 400))
    for contours, colour in outlines:
        cv2.drawContours(out, contours, -1, colour, thickness, lineType=cv2.LINE_AA)
    return out


def _blobs(rng: np.random.Generator, shape: tuple[int, int], count: int) -> np.ndarray:
    """(H, W) bool: ``count`` random filled ellipses, some cut by the frame's edges."""
    mask = np.zeros(shape, np.uint8)
    for _ in range(count):
        centre = (int(rng.integers(-20, shape[1] + 20)), int(rng.integers(-20, shape[0] + 20)))
        axes = (int(rng.integers(1, shape[1] // 3)), int(rng.integers(1, shape[0] // 3)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask.astype(bool)


def _case(name: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """A frame, its (C, H, W) masks and draw_overlay's keyword arguments, by name."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    shape = (87, 128)
    gray = rng.integers(0, 256, shape, dtype=np.uint8)
    empty = np.zeros(shape, bool)
    if name == "empty masks":
        return gray, np.stack([empty, empty]), {}
    if name == "no classes":
        return gray, np.zeros((0, *shape), bool), {}
    if name == "full frame":
        return gray, np.stack([~empty, empty]), {}
    if name == "full frame, both classes":
        return gray, np.stack([~empty, ~empty]), {"opacity": 0.6}
    if name == "one pixel each":
        first, second, corner = empty.copy(), empty.copy(), empty.copy()
        first[40, 60], second[0, 0], corner[86, 127] = True, True, True
        return gray, np.stack([first, second, corner]), {}
    if name == "overlapping classes":
        gland = _blobs(rng, shape, 2)
        return gray, np.stack([gland, gland & _blobs(rng, shape, 3), _blobs(rng, shape, 2)]), {}
    if name == "opacity and colours":
        return gray, np.stack([_blobs(rng, shape, 3), _blobs(rng, shape, 3)]), \
            {"opacity": 0.8, "colours": [(255, 0, 0), (17, 250, 3)]}
    if name == "opacity 0 and 1":
        return gray, np.stack([_blobs(rng, shape, 2), _blobs(rng, shape, 2)]), \
            {"opacity": 1.0, "colours": [(0, 0, 0), (255, 255, 255)]}
    if name == "numpy opacity":
        return gray, np.stack([_blobs(rng, shape, 2), _blobs(rng, shape, 2)]), {"opacity": np.float64(0.27)}
    if name == "noise masks":
        return gray, rng.random((3, *shape)) < 0.3, {"opacity": 0.5}
    if name == "more classes than the table":
        return gray, np.stack([_blobs(rng, shape, 1) for _ in range(TABLE_CLASSES + 2)]), {}
    if name == "non-contiguous masks":
        doubled = np.stack([_blobs(rng, (2 * shape[0], 2 * shape[1]), 4) for _ in range(3)])
        return gray, doubled[::-1, ::2, 1::2], {}  # every mask strided
    if name == "frame-sized":
        gray = rng.integers(0, 256, (872, 1280), dtype=np.uint8)
        gland = _blobs(rng, gray.shape, 1)
        return gray, np.stack([gland, gland & _blobs(rng, gray.shape, 2)]), {}
    raise ValueError(name)


CASES = ["empty masks", "no classes", "full frame", "full frame, both classes", "one pixel each",
         "overlapping classes", "opacity and colours", "opacity 0 and 1", "numpy opacity", "noise masks",
         "more classes than the table", "non-contiguous masks", "frame-sized"]


@pytest.mark.parametrize("name", CASES)
def test_overlay_is_the_same_as_the_frame_wide_blend(name: str):
    gray, masks, options = _case(name)
    expected = reference_overlay(gray, masks, **options)
    got = draw_overlay(gray, masks, **options)
    assert got.dtype == np.uint8 and got.shape == (*gray.shape, 3)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("seed", range(20))
def test_overlay_is_the_same_on_random_masks(seed: int):
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 120)), int(rng.integers(1, 160)))
    gray = rng.integers(0, 256, shape, dtype=np.uint8)
    masks = np.stack([_blobs(rng, shape, int(rng.integers(0, 4))) for _ in range(int(rng.integers(1, 5)))])
    opacity = float(rng.uniform(0, 1))
    assert np.array_equal(draw_overlay(gray, masks, opacity), reference_overlay(gray, masks, opacity))
