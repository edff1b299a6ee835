"""The workstation's measuring state (app/calipers.py, no Qt): automatic calipers, the plane's precedence, edits."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from app.calipers import (FrameCaliper, automatic_calipers, check_plane, frame_plane, moved, next_caliper_name,
                          with_new_mask)


def ellipse_mask(semi_axes=(100, 60), angle=0.0, shape=(300, 400)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (200, 150), semi_axes, angle, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


@pytest.mark.parametrize(
    "plane, names, lengths",
    [
        ("transverse", ["width", "height"], [200, 120]),
        ("sagittal", ["length"], [200]),
        (None, ["largest extent", "perpendicular"], [200, 120]),
    ],
)
def test_automatic_calipers_per_plane(plane, names, lengths):
    calipers = automatic_calipers(ellipse_mask(angle=30), plane)
    assert [c.name for c in calipers] == names and all(c.automatic for c in calipers)
    assert [c.length_px for c in calipers] == pytest.approx(lengths, abs=2.5)  # pixel centres: up to 1 px short per end


def test_no_gland_no_calipers():
    assert automatic_calipers(np.zeros((20, 20), bool), "transverse") == []


def test_length_in_mm_with_pixels_that_are_not_square():
    caliper = FrameCaliper("width", (0.0, 0.0), (30.0, 40.0))
    assert caliper.length_px == 50.0 and caliper.length_mm(None) is None
    assert caliper.length_mm((0.2, 0.1)) == pytest.approx(math.hypot(6.0, 4.0))
    assert caliper.text((0.2, 0.1)) == "width 7.2 mm" and caliper.text(None) == "width 50.0 px"


@pytest.mark.parametrize(
    "user, name, model, expected",
    [
        ("sagittal", "P1_transverse.png", "transverse", ("sagittal", "user")),
        (None, "P1_F02_sagittal_png.rf.abc.jpg", "transverse", ("sagittal", "file name")),
        (None, "case01.png", "transverse", ("transverse", "model")),
        (None, "case01.png", None, (None, None)),
    ],
)
def test_the_plane_comes_from_the_user_then_the_file_name_then_the_model(user, name, model, expected):
    assert frame_plane(user, name, model) == expected


def test_a_bad_plane_is_refused():
    assert check_plane("transverse") == "transverse" and check_plane(None) is None
    with pytest.raises(ValueError, match="a plane is one of transverse, sagittal, got 'coronal'"):
        check_plane("coronal")


def test_a_new_mask_replaces_only_untouched_automatic_calipers():
    old = automatic_calipers(ellipse_mask(), "transverse")
    edited = moved(old[0], 1, (350.0, 150.0))
    added = FrameCaliper("caliper 1", (1.0, 1.0), (5.0, 5.0))
    new = automatic_calipers(ellipse_mask((80, 50)), "transverse")
    result = with_new_mask([edited, old[1], added], new)
    assert result == [new[1], edited, added]  # the edited width stays the width: no second, automatic one
    assert not edited.automatic and edited.start_xy == old[0].start_xy and edited.end_xy == (350.0, 150.0)


def test_moving_an_end_and_naming_new_calipers():
    caliper = FrameCaliper("caliper 2", (0.0, 0.0), (10.0, 0.0), automatic=True)
    assert moved(caliper, 0, (2.0, 0.0)) == FrameCaliper("caliper 2", (2.0, 0.0), (10.0, 0.0))
    with pytest.raises(ValueError, match="ends 0 and 1, got 2"):
        moved(caliper, 2, (0.0, 0.0))
    assert next_caliper_name([]) == "caliper 1"
    assert next_caliper_name([caliper, FrameCaliper("width", (0, 0), (1, 1))]) == "caliper 3"
