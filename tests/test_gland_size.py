"""The measurement module against hand-computed shapes: filled ellipses of known axes, rotated, at known spacings.

Tolerances come from rasterisation: a caliper joins pixel centres, and the pixel centre
nearest each end of a true diameter can lie up to about 1 px inside (or, for cv2.ellipse,
whose filled polygon takes in boundary pixels, outside) the true outline. So a diameter is
within 2 px of the drawn one (1 px at each end), in units of the coarsest spacing.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pipeline.inference.gland_size import (
    PSA_DENSITY_THRESHOLD,
    Caliper,
    ellipsoid_volume_ml,
    gland_diameters,
    largest_component,
    prostate_volume,
    psa_density,
)

CENTRE = (150, 140)


def drawn_ellipse(semi_axes_px: tuple[int, int], angle_deg: float, shape=(300, 320)) -> np.ndarray:
    """A (H, W) bool filled ellipse drawn by cv2.ellipse at :data:`CENTRE`, semi-axes in px, rotated clockwise
    on screen (image y points down) by ``angle_deg``."""
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, CENTRE, semi_axes_px, angle_deg, 0, 360, 1, thickness=-1)
    return mask.astype(bool)


def physical_ellipse(semi_axes_mm: tuple[float, float], angle_deg: float, spacing: tuple[float, float],
                     extent_mm: float = 70.0) -> np.ndarray:
    """A bool mask of the pixels whose centres lie inside an ellipse of semi-axes (A, B) mm rotated by
    ``angle_deg`` in mm space, centred in a frame ``extent_mm`` wide and high, at ``spacing`` (x, y) mm/px."""
    rows, columns = int(extent_mm / spacing[1]), int(extent_mm / spacing[0])
    y_px, x_px = np.mgrid[0:rows, 0:columns]
    x_mm, y_mm = x_px * spacing[0] - extent_mm / 2, y_px * spacing[1] - extent_mm / 2
    angle = math.radians(angle_deg)
    along = x_mm * math.cos(angle) + y_mm * math.sin(angle)
    across = -x_mm * math.sin(angle) + y_mm * math.cos(angle)
    return (along / semi_axes_mm[0]) ** 2 + (across / semi_axes_mm[1]) ** 2 <= 1.0


def direction_deg(caliper: Caliper, spacing: tuple[float, float] = (1.0, 1.0)) -> float:
    """The caliper's direction in mm space, degrees in [0, 180)."""
    dx = (caliper.end_xy[0] - caliper.start_xy[0]) * spacing[0]
    dy = (caliper.end_xy[1] - caliper.start_xy[1]) * spacing[1]
    return math.degrees(math.atan2(dy, dx)) % 180.0


def angle_gap_deg(a: float, b: float) -> float:
    """The angle between two undirected directions, degrees in [0, 90]."""
    gap = abs(a - b) % 180.0
    return min(gap, 180.0 - gap)


def is_perpendicular(major: Caliper, minor: Caliper, spacing: tuple[float, float]) -> bool:
    u = np.subtract(major.end_xy, major.start_xy) * spacing
    v = np.subtract(minor.end_xy, minor.start_xy) * spacing
    return abs(float(u @ v)) <= 1e-6 * float(np.linalg.norm(u) * np.linalg.norm(v))  # ends are given to 1e-6 px


@pytest.mark.parametrize("angle", [0, 30, 45, 90, 135])
@pytest.mark.parametrize("semi_axes", [(60, 35), (80, 50)])
def test_rotated_ellipse_at_isotropic_spacing(semi_axes, angle):
    spacing = (0.2, 0.2)
    diameters = gland_diameters(drawn_ellipse(semi_axes, angle), spacing)
    major, minor = diameters.major, diameters.minor
    assert major.length_px == pytest.approx(2 * semi_axes[0], abs=2.0)
    assert minor.length_px == pytest.approx(2 * semi_axes[1], abs=2.0)
    assert major.length_mm == pytest.approx(major.length_px * 0.2) and minor.length_mm == pytest.approx(
        minor.length_px * 0.2)
    assert np.allclose(np.add(major.start_xy, major.end_xy) / 2, CENTRE, atol=2.0)
    # Without the principal-axis tie-break, the furthest pixel pair joins opposite corners of the blunt tips and
    # tilts by up to 6 degrees; with it, the caliper lies on the axis to within a pixel's angle at its end.
    assert angle_gap_deg(direction_deg(major), angle) <= 2.0
    assert is_perpendicular(major, minor, spacing) and diameters.spacing_mm == spacing


def test_anisotropic_spacing_decides_which_axis_is_longest():
    """60 x 40 px semi-axes at 0.2 mm/px across and 0.4 mm/px down: 24 x 32 mm, so the longest extent is vertical
    although the ellipse is wider than tall on screen."""
    spacing = (0.2, 0.4)
    diameters = gland_diameters(drawn_ellipse((60, 40), 0), spacing)
    assert diameters.major.length_mm == pytest.approx(2 * 40 * 0.4, abs=2 * 0.4)
    assert diameters.minor.length_mm == pytest.approx(2 * 60 * 0.2, abs=2 * 0.2)
    assert angle_gap_deg(direction_deg(diameters.major, spacing), 90.0) <= 2.0
    assert np.allclose(np.add(diameters.major.start_xy, diameters.major.end_xy) / 2, CENTRE, atol=1.0)
    assert diameters.major.length_px == pytest.approx(80, abs=2.0)  # the same segment, in pixel units
    assert is_perpendicular(diameters.major, diameters.minor, spacing)


@pytest.mark.parametrize("angle", [0, 30, 45, 90, 120])
@pytest.mark.parametrize("spacing", [(0.15, 0.3), (0.3, 0.15), (0.2, 0.2)])
def test_rotated_physical_ellipse_at_anisotropic_spacing(spacing, angle):
    """An ellipse of 48 x 30 mm: its diameters in mm whatever the pixel shape; only pixel centres inside the
    ellipse are set, so a diameter is never longer than the true one and at most 2 coarsest pixels shorter."""
    diameters = gland_diameters(physical_ellipse((24.0, 15.0), angle, spacing), spacing)
    coarsest = max(spacing)
    assert 48.0 - 2 * coarsest <= diameters.major.length_mm <= 48.0 + 1e-9
    assert 30.0 - 2 * coarsest <= diameters.minor.length_mm <= 30.0 + 1e-9
    assert angle_gap_deg(direction_deg(diameters.major, spacing), angle) <= 2.0
    assert is_perpendicular(diameters.major, diameters.minor, spacing)


@pytest.mark.parametrize(
    "corners, major_px, minor_px, tolerance_px, major_ends",
    [
        # 100 x 10 pixels: the diagonal (99.41 px between centres) is within 1 px of the straight pair, so the
        # principal axis decides: 99 px along, 9 px across, midway.
        ([(50, 100), (149, 100), (149, 109), (50, 109)], 99.0, 9.0, 1e-6, ((50.0, 104.5), (149.0, 104.5))),
        # A right triangle with legs 100 and 60 px: the hypotenuse, sqrt(100^2 + 60^2) = 116.619 px, and the
        # altitude onto it from the right angle, 100 x 60 / 116.619 = 51.450 px (fillPoly sets staircase pixels up
        # to half a pixel beyond the slanted side, hence the tolerance).
        ([(50, 50), (150, 50), (50, 110)], 116.619, 51.450, 0.5, ((50.0, 110.0), (150.0, 50.0))),
    ],
)
def test_polygons_with_hand_computed_calipers(corners, major_px, minor_px, tolerance_px, major_ends):
    mask = np.zeros((200, 200), np.uint8)
    cv2.fillPoly(mask, [np.array(corners, np.int32)], 1)
    diameters = gland_diameters(mask.astype(bool))
    assert diameters.major.length_px == pytest.approx(major_px, abs=1e-3)
    assert diameters.minor.length_px == pytest.approx(minor_px, abs=tolerance_px)
    assert (diameters.major.start_xy, diameters.major.end_xy) == major_ends


def test_caliper_ends_lie_on_the_outline_in_frame_coordinates():
    mask = physical_ellipse((24.0, 15.0), 30, (0.15, 0.3))
    diameters = gland_diameters(mask, (0.15, 0.3))
    points = np.argwhere(mask)[:, ::-1].astype(np.float32)  # (x, y) pixel centres
    hull = cv2.convexHull(points)
    for caliper in (diameters.major, diameters.minor):
        assert caliper.start_xy < caliper.end_xy  # the end with the smaller x first
        for end in (caliper.start_xy, caliper.end_xy):
            assert abs(cv2.pointPolygonTest(hull, end, measureDist=True)) < 1e-3


def test_without_spacing_everything_is_in_pixels():
    diameters = gland_diameters(drawn_ellipse((60, 35), 0), None)
    assert diameters.spacing_mm is None
    assert diameters.major.length_mm is None and diameters.minor.length_mm is None
    assert diameters.major.length_px == pytest.approx(120, abs=2.0)
    # The tips are flat runs of pixels at x = 90 and 210: the caliper joins them midway, on the axis.
    assert diameters.major.start_xy == (90.0, 140.0) and diameters.major.end_xy == (210.0, 140.0)
    assert diameters.minor.start_xy == (150.0, 105.0) and diameters.minor.end_xy == (150.0, 175.0)


def test_a_mask_in_two_pieces_measures_the_largest():
    mask = drawn_ellipse((60, 35), 0)
    cv2.circle(mask.view(np.uint8), (300, 20), 5, 1, thickness=-1)  # a speck 150 px away
    assert np.array_equal(largest_component(mask), drawn_ellipse((60, 35), 0))
    assert gland_diameters(mask).major.length_px == pytest.approx(120, abs=2.0)


def test_a_single_pixel_measures_zero():
    mask = np.zeros((5, 5), bool)
    mask[2, 3] = True
    diameters = gland_diameters(mask, (0.1, 0.1))
    assert diameters.major.length_mm == diameters.minor.length_mm == 0.0
    assert diameters.major.start_xy == diameters.major.end_xy == (3.0, 2.0)


@pytest.mark.parametrize(
    "mask, spacing, message",
    [
        (np.zeros((20, 30), bool), None, "the gland mask is empty"),
        (np.ones((2, 20, 30), bool), None, "must be 2-D"),
        (np.ones((20, 30), bool), (0.0, 0.2), "pixel spacing must be two finite values > 0"),
        (np.ones((20, 30), bool), (-0.1, 0.2), "pixel spacing must be two finite values > 0"),
        (np.ones((20, 30), bool), (float("nan"), 0.2), "pixel spacing must be two finite values > 0"),
        (np.ones((20, 30), bool), (0.2,), "pixel spacing must be two finite values > 0"),
        (np.ones((20, 30), bool), "ab", "pixel spacing must be two finite values > 0"),
    ],
)
def test_bad_masks_and_spacings_are_refused(mask, spacing, message):
    with pytest.raises(ValueError, match=message):
        gland_diameters(mask, spacing)


@pytest.mark.parametrize(
    "length, width, height, millilitres",
    [
        (40.0, 50.0, 30.0, 31.41593),  # pi/6 x 60 000 mm^3 / 1000
        (10.0, 10.0, 10.0, 0.52360),   # pi/6 x 1000 mm^3 / 1000
        (45.0, 52.0, 38.0, 46.55840),  # pi/6 x 88 920 mm^3 / 1000
    ],
)
def test_ellipsoid_volume(length, width, height, millilitres):
    assert ellipsoid_volume_ml(length, width, height) == pytest.approx(millilitres, abs=5e-6)


@pytest.mark.parametrize(
    "diameters, message",
    [
        ((0.0, 50.0, 30.0), "length_mm must be a finite number > 0"),
        ((40.0, -5.0, 30.0), "width_mm must be a finite number > 0"),
        ((40.0, 50.0, float("nan")), "height_mm must be a finite number > 0"),
        ((float("inf"), 50.0, 30.0), "length_mm must be a finite number > 0"),
    ],
)
def test_ellipsoid_volume_refuses_bad_diameters(diameters, message):
    with pytest.raises(ValueError, match=message):
        ellipsoid_volume_ml(*diameters)


@pytest.mark.parametrize(
    "psa, volume, threshold, density, reaches",
    [
        (6.0, 40.0, PSA_DENSITY_THRESHOLD, 0.15, True),  # exactly at the threshold: reaches it
        (4.5, 30.0, 0.15, 0.15, True),
        (5.9, 40.0, 0.15, 0.1475, False),
        (0.0, 30.0, 0.15, 0.0, False),
        (12.0, 40.0, 0.3, 0.3, True),
        (12.0, 40.0, 0.35, 0.3, False),
    ],
)
def test_psa_density_and_its_threshold(psa, volume, threshold, density, reaches):
    result = psa_density(psa, volume, threshold)
    assert result.density == pytest.approx(density, abs=1e-12)
    assert result.reaches_threshold is reaches and result.threshold == threshold
    assert (result.psa_ng_per_ml, result.volume_ml) == (psa, volume)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((-1.0, 40.0), "psa_ng_per_ml must be a finite number >= 0"),
        ((float("nan"), 40.0), "psa_ng_per_ml must be a finite number >= 0"),
        ((5.0, 0.0), "volume_ml must be a finite number > 0"),
        ((5.0, -3.0), "volume_ml must be a finite number > 0"),
        ((5.0, 40.0, 0.0), "threshold must be a finite number > 0"),
    ],
)
def test_psa_density_refuses_bad_inputs(arguments, message):
    with pytest.raises(ValueError, match=message):
        psa_density(*arguments)


TRANSVERSE_SEMI_AXES = (25.0, 15.0)  # width 50 mm, height 30 mm
SAGITTAL_SEMI_AXES = (20.0, 14.0)    # length 40 mm


def test_prostate_volume_from_two_planes():
    spacing = (0.2, 0.2)
    transverse = physical_ellipse(TRANSVERSE_SEMI_AXES, 0, spacing)
    sagittal = physical_ellipse(SAGITTAL_SEMI_AXES, 30, (0.25, 0.2))
    result = prostate_volume(transverse, spacing, sagittal, (0.25, 0.2), psa_ng_per_ml=6.0)
    assert result.width.length_mm == pytest.approx(50.0, abs=0.4)
    assert result.height.length_mm == pytest.approx(30.0, abs=0.4)
    assert result.length.length_mm == pytest.approx(40.0, abs=0.5)
    assert result.sagittal.minor.length_mm == pytest.approx(28.0, abs=0.5)  # the second height estimate
    assert result.volume_ml == ellipsoid_volume_ml(result.length.length_mm, result.width.length_mm,
                                                   result.height.length_mm)
    assert result.volume_ml == pytest.approx(31.416, rel=0.04)  # each diameter within 2 px of 40, 50, 30 mm
    assert result.volume_note is None
    assert result.psa.density == pytest.approx(6.0 / result.volume_ml) and result.psa.reaches_threshold


@pytest.mark.parametrize(
    "transverse_spacing, sagittal_spacing, named",
    [
        (None, (0.2, 0.2), "no pixel spacing for the transverse frame"),
        ((0.2, 0.2), None, "no pixel spacing for the sagittal frame"),
        (None, None, "no pixel spacing for the transverse and sagittal frames"),
    ],
)
def test_without_a_spacing_there_is_no_volume(transverse_spacing, sagittal_spacing, named):
    transverse = physical_ellipse(TRANSVERSE_SEMI_AXES, 0, (0.2, 0.2))
    sagittal = physical_ellipse(SAGITTAL_SEMI_AXES, 0, (0.2, 0.2))
    result = prostate_volume(transverse, transverse_spacing, sagittal, sagittal_spacing, psa_ng_per_ml=6.0)
    assert result.volume_ml is None and result.psa is None
    assert result.volume_note.startswith(named) and "px only" in result.volume_note
    assert result.width.length_px == pytest.approx(250.0, abs=2.0)
    assert (result.width.length_mm is None) == (transverse_spacing is None)
    assert (result.length.length_mm is None) == (sagittal_spacing is None)


@pytest.mark.parametrize(
    "psa, threshold, message",
    [(-2.0, 0.15, "psa_ng_per_ml must be"), (4.0, -0.1, "threshold must be")],
)
def test_prostate_volume_checks_the_psa_even_without_a_spacing(psa, threshold, message):
    mask = physical_ellipse(TRANSVERSE_SEMI_AXES, 0, (0.2, 0.2))
    with pytest.raises(ValueError, match=message):
        prostate_volume(mask, None, mask, None, psa_ng_per_ml=psa, psa_threshold=threshold)


def test_prostate_volume_refuses_an_empty_frame():
    mask = physical_ellipse(TRANSVERSE_SEMI_AXES, 0, (0.2, 0.2))
    with pytest.raises(ValueError, match="empty"):
        prostate_volume(mask, (0.2, 0.2), np.zeros_like(mask), (0.2, 0.2))
