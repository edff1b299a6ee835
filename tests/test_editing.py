"""Mask edits (app/editing.py, no Qt): strokes, filling closed outlines, the packed undo records."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from app.editing import PackedMask, fill_outline, stroke


def empty(shape=(60, 80)) -> np.ndarray:
    return np.zeros(shape, bool)


@pytest.mark.parametrize("radius", [1, 5, 12])
def test_a_click_paints_a_disk_of_the_radius(radius):
    painted = stroke(empty(), [(40.0, 30.0)], radius, True)
    assert math.pi * (radius - 0.5) ** 2 <= painted.sum() <= math.pi * (radius + 1) ** 2  # a raster disk
    assert painted[30, 40] and painted[30, 40 + radius] and not painted[30, 40 + radius + 1]


def test_a_drag_paints_a_band_and_the_eraser_removes_it():
    band = stroke(empty(), [(10.0, 30.0), (70.0, 30.0)], 3, True)
    assert band[27:34, 10:71].all()  # 2 x 3 + 1 rows along the drag
    assert not band[:25].any() and not band[36:].any() and not band[:, :6].any() and not band[:, 75:].any()
    erased = stroke(band, [(40.0, 30.0)], 5, False)
    assert not erased[30, 40] and erased[30, 20] and erased.sum() < band.sum()
    assert band[30, 40]  # a new array: the input is untouched


@pytest.mark.parametrize(
    "radius, points, message",
    [(0, [(1.0, 1.0)], "radius must be 1-200 px, got 0"), (3, [], "at least one point")],
)
def test_bad_strokes_are_refused(radius, points, message):
    with pytest.raises(ValueError, match=message):
        stroke(empty(), points, radius, True)


def ring(closed: bool = True) -> np.ndarray:
    outline = np.zeros((60, 80), np.uint8)
    cv2.circle(outline, (40, 30), 20, 1, thickness=1)
    if not closed:
        outline[30, 58:62] = 0  # a gap on the right
        outline[29:32, 55:62] = 0
    return outline.astype(bool)


def test_fill_closes_the_inside_of_an_outline():
    filled = fill_outline(ring(), (40.0, 30.0))
    assert filled[30, 40] and filled[30, 59] and not filled[30, 62] and not filled[0, 0]
    assert filled.sum() == pytest.approx(math.pi * 20.5 ** 2, rel=0.05)


@pytest.mark.parametrize(
    "mask, seed, message",
    [
        (ring(closed=False), (40.0, 30.0), "not closed: it reaches the frame's border"),
        (ring(), (60.0, 30.0), "already on the mask"),
        (ring(), (90.0, 30.0), r"\(90, 30\) is outside the frame"),
    ],
)
def test_fill_refuses(mask, seed, message):
    with pytest.raises(ValueError, match=message):
        fill_outline(mask, seed)


def test_packed_masks_round_trip_at_one_bit_per_pixel():
    mask = np.random.default_rng(0).random((37, 53)) > 0.5
    packed = PackedMask.pack(mask)
    assert packed.bits.nbytes == math.ceil(37 * 53 / 8)
    assert np.array_equal(packed.unpack(), mask)
