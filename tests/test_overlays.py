"""Burned-in graphics (``train.augment.overlay``): each kind drawn where it should be with known grey levels, the
draws within their ranges and probability, and the mask never touched."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.augment_spec import AugmentParams, OverlayAugment
from pipeline.training.augment import augment, draw_augmentation
from pipeline.training.overlays import OVERLAY_KINDS, Overlay, burn_in, draw_overlays

SIDE = 100
BACKGROUND = 40


def blank() -> np.ndarray:
    return np.full((SIDE, SIDE), BACKGROUND, np.uint8)


def test_an_ellipse_outline_passes_through_its_axes_ends_and_leaves_the_inside():
    out = burn_in(blank(), (Overlay("ellipse", (0.5, 0.5), 0.2, aspect=0.5, angle_deg=0.0, grey=200),))
    assert out[50, 70] == out[50, 30] == out[60, 50] == out[40, 50] == 200  # semi-axes 20 and 10 px
    assert out[50, 50] == out[50, 60] == BACKGROUND and out[50, 75] == BACKGROUND
    assert set(np.unique(out).tolist()) == {BACKGROUND, 200}


def test_a_cross_is_two_one_pixel_arms():
    out = burn_in(blank(), (Overlay("cross", (0.3, 0.6), 0.2, grey=230),))  # arm: 20 px // 4 = 5 px
    changed = np.argwhere(out != BACKGROUND)
    assert out[60, 25:36].tolist() == [230] * 11 and out[55:66, 30].tolist() == [230] * 11
    assert len(changed) == 21


def test_a_dotted_line_has_a_dot_every_six_pixels():
    out = burn_in(blank(), (Overlay("dotted_line", (0.5, 0.5), 0.12, angle_deg=0.0, grey=250),))  # 12 px each way
    row = out[50]
    assert np.flatnonzero(row == 250).tolist() == [38, 39, 44, 45, 50, 51, 56, 57, 62, 63]
    assert (out[51, [38, 44, 50, 56, 62]] == 250).all() and (out[52] == BACKGROUND).all()


def test_text_draws_capitals_of_its_size_right_of_and_above_its_origin():
    out = burn_in(blank(), (Overlay("text", (0.2, 0.5), 0.1, grey=220, text="D1 4.2"),))
    rows, columns = np.nonzero(out > 130)  # the strokes (OpenCV smooths their edges)
    assert len(rows) > 30 and out.max() == 220 and out.min() == BACKGROUND
    assert 50 - 12 <= rows.min() <= 50 - 8 and rows.max() <= 50 and 20 <= columns.min() <= 23


def test_a_translucent_shape_blends_its_inside_and_draws_a_solid_rim():
    image = blank()
    image[50, 50] = 100
    out = burn_in(image, (Overlay("translucent", (0.5, 0.5), 0.2, aspect=1.0, grey=240, alpha=0.25),))
    assert out[50, 50] == round(100 * 0.75 + 240 * 0.25) and out[45, 45] == round(40 * 0.75 + 240 * 0.25)
    assert out[50, 70] == out[30, 50] == 240 and out[50, 80] == out[5, 5] == BACKGROUND
    assert image[50, 50] == 100 and image[45, 45] == BACKGROUND  # the input is not changed


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown overlay kind 'arrow'"):
        burn_in(blank(), (Overlay("arrow", (0.5, 0.5), 0.1),))


def test_the_draws_stay_within_their_ranges():
    params = OverlayAugment(p=1.0, count=4, max_size=0.25)
    draws = [draw_overlays(np.random.default_rng(seed), params) for seed in range(400)]
    assert {len(d) for d in draws} == {1, 2, 3, 4}
    overlays = [overlay for d in draws for overlay in d]
    assert {overlay.kind for overlay in overlays} == set(OVERLAY_KINDS)
    assert all(0.02 <= o.size <= 0.25 and 0.2 <= o.aspect <= 1 and 160 <= o.grey <= 255 and 0.2 <= o.alpha <= 0.5
               and 0 <= min(o.centre) and max(o.centre) <= 1 for o in overlays)
    assert all(2 <= len(o.text) <= 8 for o in overlays if o.kind == "text")
    assert not any(o.text for o in overlays if o.kind != "text")
    assert draw_overlays(np.random.default_rng(7), params) == draw_overlays(np.random.default_rng(7), params)


def test_graphics_come_with_their_probability_and_never_touch_the_mask():
    params = AugmentParams(overlay=OverlayAugment(p=0.3))
    drawn = [draw_augmentation(np.random.default_rng((1, 0, i)), params, 64).overlays for i in range(2000)]
    assert abs(sum(bool(d) for d in drawn) / len(drawn) - 0.3) < 0.04
    image = np.full((64, 64), 30, np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 1
    always = dataclasses.replace(params, overlay=OverlayAugment(p=1.0))
    never = dataclasses.replace(params, overlay=OverlayAugment(p=0.0))
    for seed in range(10):
        with_graphics = augment(image, mask, np.random.default_rng(seed), always)
        without = augment(image, mask, np.random.default_rng(seed), never)
        assert np.array_equal(with_graphics[1], without[1])  # the same geometry, the mask untouched
        assert not np.array_equal(with_graphics[0], without[0])
        assert (with_graphics[0] >= without[0]).all()  # bright graphics (160 and up) over a dark frame
