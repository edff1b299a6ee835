"""The depth scale read from the frame, and the calibration chain (DICOM, depth scale, manual, none).

The sample generator knows each frame's true spacing: the reading must be within 2% of it
on every scanner variant. Hand-drawn rulers check what the generator never draws: ticks
pointing left, one tick length with another interval, a hidden tick, irregular ticks.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pipeline.imaging.calibration import Calibration, calibrate, manual_spacing
from pipeline.imaging.depth_scale import DepthScaleError, read_depth_scale
from pipeline.synthetic import render_phantom
from pipeline.synthetic.variants import VARIANTS

FRAME = (400, 600)  # rows, columns of the hand-drawn frames


def variant_frame(name: str, seed: int) -> tuple[np.ndarray, float]:
    """A grey frame of a generator variant at its own size (the original scanner's 1280 x 872 for the others) and
    its true mm per px."""
    variant = VARIANTS[name]
    width, height = variant.size or (1280, 872)
    rendered = render_phantom(np.random.default_rng(seed), width, height, with_lesion=False, variant=variant)
    return cv2.cvtColor(rendered.image, cv2.COLOR_BGR2GRAY), rendered.spacing_mm


def ruled_frame(rows: list[float], lengths: list[int], x: int = 520, leftwards: bool = False) -> np.ndarray:
    """A black frame with a grey disk (the fan) and 1 px ticks at ``rows`` starting (or ending) at x."""
    gray = np.zeros(FRAME, np.uint8)
    cv2.circle(gray, (260, 200), 150, 120, -1)
    for row, length in zip(rows, lengths):
        end = x - length + 1 if leftwards else x + length - 1
        cv2.line(gray, (x, round(row)), (end, round(row)), 220, 1)
    return gray


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_generator_variant_is_read_within_2_percent(name):
    for seed in (0, 1):
        gray, true_mm = variant_frame(name, seed)
        scale = read_depth_scale(gray)
        assert scale.mm_per_px == pytest.approx(true_mm, rel=0.02), (name, seed)
        assert scale.minor_ticks >= len(scale.rows) - 1  # a half-centimetre tick between every two


@pytest.mark.parametrize(
    "case, rows, lengths, tick_mm, expected_gap",
    [
        # majors every 50 px with 4 minors between (2 mm ticks): the majors are the interval
        ("majors and minors", [20 + 10 * i for i in range(31)], [14 if i % 5 == 0 else 6 for i in range(31)], 10, 50),
        # one tick length, 5 mm apart by the setting
        ("one length, 5 mm", [30 + 37.5 * i for i in range(9)], [10] * 9, 5, 37.5),
        # a hidden major tick (the third) is skipped, not averaged into the gap
        ("a hidden tick", [20, 80, 200, 260, 320], [12] * 5, 10, 60),
    ],
)
def test_hand_drawn_rulers(case, rows, lengths, tick_mm, expected_gap):
    scale = read_depth_scale(ruled_frame(rows, lengths), tick_mm)
    assert scale.gap_px == pytest.approx(expected_gap, abs=0.3), case
    assert scale.mm_per_px == pytest.approx(tick_mm / expected_gap, rel=0.01), case
    assert scale.column == 520


def test_ticks_drawn_leftwards_on_the_left_of_the_fan_are_read():
    gray = np.fliplr(ruled_frame([20 + 40 * i for i in range(9)], [12, 5] * 4 + [12]))
    scale = read_depth_scale(np.ascontiguousarray(gray))
    assert scale.gap_px == pytest.approx(80, abs=0.3) and scale.minor_ticks == 4
    assert scale.column == FRAME[1] - 1 - 520


@pytest.mark.parametrize(
    "case, gray, message",
    [
        ("black frame", np.zeros(FRAME, np.uint8), "no ultrasound fan found"),
        ("fan without a scale", ruled_frame([], []), "0 tick-like mark"),
        ("irregular ticks", ruled_frame([20, 60, 130, 150, 230, 250, 330], [12] * 7), "gaps between ticks disagree"),
        ("two ticks", ruled_frame([50, 100], [12, 12]), "no depth scale"),
    ],
)
def test_frames_without_a_readable_scale_are_refused_with_the_reason(case, gray, message):
    with pytest.raises(DepthScaleError, match=message):
        read_depth_scale(gray)


def test_a_sample_frame_with_its_scale_blanked_is_refused():
    gray, _ = variant_frame("default", 0)
    gray[:, int(0.8 * gray.shape[1]):] = 0
    with pytest.raises(DepthScaleError, match="no depth scale"):
        read_depth_scale(gray)


@pytest.mark.parametrize("tick_mm", [0.0, -1.0, math.nan])
def test_a_bad_interval_is_a_value_error_not_a_refusal(tick_mm):
    with pytest.raises(ValueError, match="tick interval must be > 0 mm") as raised:
        read_depth_scale(ruled_frame([20, 60, 100], [12] * 3), tick_mm)
    assert not isinstance(raised.value, DepthScaleError)


# ---- the chain ----------------------------------------------------------------------------------------------------

RULED = ruled_frame([20 + 40 * i for i in range(9)], [12] * 9)  # 10 mm per 40 px: 0.25 mm/px
PLAIN = ruled_frame([], [])


@pytest.mark.parametrize(
    "case, gray, dicom, manual, spacing, source",
    [
        ("the DICOM spacing first", RULED, (0.1, 0.2), 0.3, (0.1, 0.2), "dicom"),
        ("then the depth scale", RULED, None, 0.3, (0.25, 0.25), "depth_scale"),
        ("then the manual spacing", PLAIN, None, 0.3, (0.3, 0.3), "manual"),
        ("else none", PLAIN, None, None, None, "none"),
    ],
)
def test_the_calibration_chain_order(case, gray, dicom, manual, spacing, source):
    calibration = calibrate(gray, dicom, manual_mm=manual)
    assert calibration.source == source, case
    if spacing is None:
        assert calibration.spacing_mm is None
        assert calibration.note.startswith("no DICOM spacing, no depth scale: ")
        assert calibration.described.startswith("none (no DICOM spacing")
    else:
        assert calibration.spacing_mm == pytest.approx(spacing, rel=1e-3)
        assert " mm/px from " in calibration.described


def test_the_depth_scale_note_says_what_was_read():
    calibration = calibrate(RULED)
    assert calibration == Calibration(calibration.spacing_mm, "depth_scale", "depth scale at x 520: 9 ticks, "
                                                                             "40.00 px per 10 mm")


@pytest.mark.parametrize(
    "start, end, distance_mm, expected",
    [((0, 0), (30, 40), 10.0, 0.2), ((5, 5), (5, 105), 25.0, 0.25)],
)
def test_manual_spacing_from_two_points(start, end, distance_mm, expected):
    assert manual_spacing(start, end, distance_mm) == pytest.approx(expected)


@pytest.mark.parametrize(
    "start, end, distance_mm, message",
    [((0, 0), (1, 1), 10.0, "1.4 px apart"), ((0, 0), (30, 40), 0.0, "the distance must be"),
     ((0, 0), (30, 40), math.inf, "the distance must be")],
)
def test_manual_spacing_refuses_bad_input(start, end, distance_mm, message):
    with pytest.raises(ValueError, match=message):
        manual_spacing(start, end, distance_mm)


def test_a_bad_manual_or_dicom_spacing_is_named():
    with pytest.raises(ValueError, match="the manual spacing must be a finite number of mm per px > 0, got -0.1"):
        calibrate(PLAIN, manual_mm=-0.1)
    with pytest.raises(ValueError, match="the DICOM spacing must be"):
        calibrate(PLAIN, (0.0, 0.1))
