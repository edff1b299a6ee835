"""Training augmentation: each scanner-variety transform on tiny arrays with known results, the geometry
moving image and mask together, the draws (reproducible, independent per step, within their ranges), and
the ``train.augment`` parameters' checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pipeline.augment_spec import (AugmentParams, DynamicRangeAugment, ElasticAugment, GainAugment, GammaAugment,
                                   NoiseAugment, OverlayAugment, SpeckleAugment, TgcAugment)
from pipeline.config import ParamsError, build
from pipeline.imaging.masks import pack_masks
from pipeline.training.augment import (FrameAugmentation, augment, displacement_field, draw_augmentation, move,
                                       restyle)
from pipeline.training.intensity import (add_noise, apply_gain, apply_gamma, change_dynamic_range, coarsen_speckle,
                                         smoothstep_weights, tgc_profile)

SECTIONS = {"gain": GainAugment, "tgc": TgcAugment, "dynamic_range": DynamicRangeAugment, "gamma": GammaAugment,
            "speckle": SpeckleAugment, "noise": NoiseAugment, "elastic": ElasticAugment, "overlay": OverlayAugment}
OFF = {name: section(p=0) for name, section in SECTIONS.items()}  # every newer step off
ALWAYS = {name: section(p=1) for name, section in SECTIONS.items()}  # every newer step on every frame
NEW_STEPS = ("elastic_px", "speckle", "gain_db", "tgc_db", "dynamic_range_db", "gamma", "noise", "overlays")


def row(*values: float) -> np.ndarray:
    """A (1, N) float32 image."""
    return np.array([values], np.float32)


# Intensity transforms, on 0-255 display values.

@pytest.mark.parametrize("image, gain_db, range_db, expected", [
    (row(0, 10, 100, 250), 0.0, 60.0, row(0, 10, 100, 250)),          # 0 dB: identity
    (row(0, 10, 100, 250), 6.0, 60.0, row(0, 35.5, 125.5, 255)),      # +6 dB of 60 = +25.5 grey levels, saturates
    (row(0, 10, 100, 250), -6.0, 60.0, row(0, 0, 74.5, 224.5)),       # -25.5; 0 stays 0 (no echo)
    (row(0, 10, 100, 250), 6.0, 30.0, row(0, 61, 151, 255)),          # a 30 dB display: +51 grey levels
])
def test_gain_shifts_echoes_by_db_of_the_display_range(image, gain_db, range_db, expected):
    np.testing.assert_allclose(apply_gain(image, gain_db, range_db), expected, atol=1e-4)


def test_gain_profile_shifts_each_row_by_its_own_gain():
    image = np.full((3, 2), 100.0, np.float32)
    image[1, 0] = 0.0
    shifted = apply_gain(image, np.array([-6.0, 0.0, 12.0], np.float32), 60.0)
    np.testing.assert_allclose(shifted, [[74.5, 74.5], [0.0, 100.0], [151.0, 151.0]], atol=1e-4)


@pytest.mark.parametrize("knots, rows, expected", [
    ([0.0, 6.0], 3, [0.0, 3.0, 6.0]),                         # smoothstep at the middle: half way
    ([0.0, 6.0], 5, [0.0, 0.9375, 3.0, 5.0625, 6.0]),         # 3t^2 - 2t^3 at t = 1/4, 3/4
    ([2.0, -4.0, 1.0], 3, [2.0, -4.0, 1.0]),                  # one row per knot: the knots themselves
    ([5.0, 5.0, 5.0, 5.0], 7, [5.0] * 7),                     # equal knots: a flat gain
])
def test_tgc_profile_passes_smoothly_through_its_knots(knots, rows, expected):
    np.testing.assert_allclose(tgc_profile(np.array(knots), rows), expected, atol=1e-5)


def test_smoothstep_weights_are_convex_and_hit_the_knots():
    weights = smoothstep_weights(3, 5)
    np.testing.assert_allclose(weights, [[1, 0, 0], [0.5, 0.5, 0], [0, 1, 0], [0, 0.5, 0.5], [0, 0, 1]], atol=1e-6)
    many = smoothstep_weights(7, 100)
    assert many.min() >= 0 and np.allclose(many.sum(axis=1), 1.0)


def test_tgc_profile_stays_within_its_knots_and_is_flat_at_them():
    knots = np.random.default_rng(0).uniform(-6, 6, 6)
    profile = tgc_profile(knots, 501)  # knots at rows 0, 100, ..., 500
    assert knots.min() - 1e-5 <= profile.min() and profile.max() <= knots.max() + 1e-5
    slopes = np.abs(np.diff(profile))
    assert slopes[[0, 99, 100, 199, 200, 499]].max() < 0.01 < slopes.max()


@pytest.mark.parametrize("image, new_range_db, expected", [
    (row(0, 5, 155, 255), 60.0, row(0, 5, 155, 255)),       # the same range: identity
    (row(0, 5, 155, 255), 120.0, row(0, 130, 205, 255)),    # twice the range: half the distance to white
    (row(0, 5, 155, 255), 30.0, row(0, 0, 55, 255)),        # half the range: twice the distance, clipped at 0
])
def test_dynamic_range_keeps_white_and_black(image, new_range_db, expected):
    np.testing.assert_allclose(change_dynamic_range(image, 60.0, new_range_db), expected, atol=1e-4)


@pytest.mark.parametrize("gamma, expected", [
    (1.0, row(0, 51, 127.5, 255)),
    (2.0, row(0, 10.2, 63.75, 255)),
    (0.5, row(0, 114.0395, 180.3122, 255)),     # 255 * sqrt(0.2), 255 * sqrt(0.5)
])
def test_gamma_bends_the_mid_greys_only(gamma, expected):
    np.testing.assert_allclose(apply_gamma(row(0, 51, 127.5, 255), gamma), expected, atol=1e-3)


def test_speckle_factor_one_is_identity_and_two_averages_2x2_blocks():
    checker = (np.indices((8, 8)).sum(axis=0) % 2 * 200).astype(np.float32)
    np.testing.assert_array_equal(coarsen_speckle(checker, 1.0), checker)
    np.testing.assert_array_equal(coarsen_speckle(checker, 1.05), checker)  # 8 / 1.05 rounds to 8: unchanged
    np.testing.assert_allclose(coarsen_speckle(checker, 2.0), np.full((8, 8), 100.0), atol=1e-4)
    assert coarsen_speckle(checker, 2.0).shape == (8, 8)


def test_noise_of_zero_deviation_is_identity():
    image = row(0, 10, 255)
    np.testing.assert_array_equal(add_noise(image, 0.0, 0.0, np.random.default_rng(0)), image)


@pytest.mark.parametrize("value, additive, multiplicative, expected_std", [
    (100.0, 10.0, 0.0, 10.0),
    (100.0, 0.0, 0.1, 10.0),
    (0.0, 0.0, 0.5, 0.0),          # multiplicative noise leaves black black
    (100.0, 6.0, 0.08, 10.0),      # independent: sqrt(6^2 + 8^2)
])
def test_noise_has_the_requested_deviation(value, additive, multiplicative, expected_std):
    image = np.full((256, 256), value, np.float32)
    noisy = add_noise(image, additive, multiplicative, np.random.default_rng(1))
    assert abs(float(noisy.mean()) - value) < 0.2
    assert abs(float(noisy.std()) - expected_std) < 0.2


# Geometry: image and mask together.

def labelled_frame(side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A bright off-centre rectangle (gland, bit 0) holding a darker square (lesion, bit 1); mask values 0, 1, 3."""
    gland, lesion = np.zeros((side, side), bool), np.zeros((side, side), bool)
    gland[6:18, 4:24], lesion[9:14, 8:13] = True, True
    image = np.where(gland, 220, 30).astype(np.uint8)
    image[lesion] = 120
    return image, pack_masks(np.stack([gland, lesion]))


def test_no_augmentation_and_a_zero_elastic_field_are_identities():
    image, mask = labelled_frame()
    for nothing in (FrameAugmentation(), FrameAugmentation(elastic_px=np.zeros((2, 4, 4), np.float32))):
        moved, moved_mask = move(image, mask, nothing)
        np.testing.assert_array_equal(moved, image)
        np.testing.assert_array_equal(moved_mask, mask)
        np.testing.assert_array_equal(restyle(image, nothing, 60.0), image)


def test_a_uniform_elastic_field_shifts_image_and_mask_alike():
    image, mask = labelled_frame()
    shift = FrameAugmentation(elastic_px=np.stack([np.full((3, 3), 3.0), np.full((3, 3), -2.0)]).astype(np.float32))
    moved, moved_mask = move(image, mask, shift)
    # output (x, y) samples input (x + 3, y - 2): the content moves 3 px left and 2 px down
    np.testing.assert_array_equal(moved[2:, :-3], image[:-2, 3:])
    np.testing.assert_array_equal(moved_mask[2:, :-3], mask[:-2, 3:])
    assert not moved[:2].any() and not moved_mask[:, -3:].any()


def test_vflip_turns_the_frame_upside_down():
    image, mask = labelled_frame()
    moved, moved_mask = move(image, mask, FrameAugmentation(vflip=True))
    np.testing.assert_array_equal(moved, image[::-1])
    np.testing.assert_array_equal(moved_mask, mask[::-1])


def test_displacement_field_is_smooth_and_bounded_by_its_control_points():
    control = np.random.default_rng(3).uniform(-5, 5, (2, 4, 4)).astype(np.float32)
    field = displacement_field(control, (64, 48))
    assert field.shape == (64, 48, 2) and field.dtype == np.float32
    assert np.abs(field).max() <= np.abs(control).max()
    corners = (np.array([0, 0, -1, -1]), np.array([0, -1, 0, -1]))
    np.testing.assert_allclose(field[corners].T, control[:, corners[0], corners[1]], rtol=1e-6)
    assert np.abs(np.diff(field, axis=0)).max() < 1.0 and np.abs(np.diff(field, axis=1)).max() < 1.0
    np.testing.assert_allclose(displacement_field(np.full((2, 3, 3), 2.5, np.float32), (10, 10)), 2.5)


@pytest.mark.parametrize("seed", range(6))
def test_strong_geometry_keeps_labels_and_moves_them_with_the_image(seed: int):
    image, mask = labelled_frame()
    params = AugmentParams(rotate_deg=30.0, scale=0.2, brightness=0.0, contrast=0.0,
                           **{**OFF, "elastic": ElasticAugment(p=1.0, amplitude=0.1, grid=3)})
    moved, moved_mask = augment(image, mask, np.random.default_rng(seed), params)
    assert set(np.unique(moved_mask).tolist()) <= {0, 1, 3}  # nearest neighbour: no mixed or new labels
    inside = moved > 200  # clearly inside the moved gland, outside the lesion
    assert inside.sum() > 40 and (moved_mask[inside] == 1).all()


# Draws.

def test_same_seed_same_augmentation_and_another_seed_another():
    image, mask = labelled_frame(64)
    params = AugmentParams(**ALWAYS)
    first, again, other = (augment(image, mask, np.random.default_rng((7, 2, index)), params) for index in (5, 5, 6))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_old_draws_come_first_and_new_steps_off_change_nothing_else():
    rng = np.random.default_rng(11)
    legacy = [rng.random() < 0.5, rng.uniform(-10, 10), rng.uniform(0.9, 1.1), rng.uniform(0.9, 1.1),
              rng.uniform(-0.1, 0.1) * 255.0]
    drawn = draw_augmentation(np.random.default_rng(11), AugmentParams(vflip=False, **OFF), 32)
    assert [drawn.hflip, drawn.angle_deg, drawn.scale, drawn.contrast, drawn.brightness] == legacy
    assert [getattr(drawn, name) for name in NEW_STEPS] == [None, 1.0, 0.0, None, None, 1.0, None, ()]
    assert not drawn.vflip


@pytest.mark.parametrize("step", ["gain", "tgc", "dynamic_range", "gamma", "speckle", "noise", "elastic", "overlay"])
def test_turning_one_step_off_leaves_the_others_draws_alone(step: str):
    on = draw_augmentation(np.random.default_rng(5), AugmentParams(**ALWAYS), 64)
    params = AugmentParams(**{**ALWAYS, step: OFF[step]})
    off = draw_augmentation(np.random.default_rng(5), params, 64)
    changed = [f.name for f in dataclasses.fields(FrameAugmentation)
               if not np.array_equal(np.asarray(getattr(on, f.name), dtype=object),
                                     np.asarray(getattr(off, f.name), dtype=object))]
    assert changed == {"gain": ["gain_db"], "tgc": ["tgc_db"], "dynamic_range": ["dynamic_range_db"],
                       "gamma": ["gamma"], "speckle": ["speckle"], "noise": ["noise", "noise_seed"],
                       "elastic": ["elastic_px"], "overlay": ["overlays"]}[step]


def test_draws_happen_with_their_probability_and_within_their_ranges():
    params = AugmentParams(gain=GainAugment(p=0.3, db=4.0), tgc=TgcAugment(p=0.5, db=3.0, knots=3),
                           dynamic_range=DynamicRangeAugment(p=0.2, low_db=50.0, high_db=70.0),
                           gamma=GammaAugment(p=0.4, low=0.8, high=1.25), speckle=SpeckleAugment(p=0.6, low=1.2, high=1.5),
                           noise=NoiseAugment(p=0.1, additive=5.0, multiplicative=0.2),
                           elastic=ElasticAugment(p=0.7, amplitude=0.05, grid=5))
    draws = [draw_augmentation(np.random.default_rng((0, 0, i)), params, 100) for i in range(2000)]

    def share(name: str, default: object) -> float:
        return sum(not np.array_equal(np.asarray(getattr(d, name), dtype=object), np.asarray(default, dtype=object))
                   for d in draws) / len(draws)

    shares = [share("gain_db", 0.0), share("tgc_db", None), share("dynamic_range_db", None), share("gamma", 1.0),
              share("speckle", 1.0), share("noise", None), share("elastic_px", None), share("vflip", False)]
    np.testing.assert_allclose(shares, [0.3, 0.5, 0.2, 0.4, 0.6, 0.1, 0.7, 0.5], atol=0.04)
    assert all(-4 <= d.gain_db <= 4 for d in draws)
    assert all(d.tgc_db.shape == (3,) and np.abs(d.tgc_db).max() <= 3 for d in draws if d.tgc_db is not None)
    assert all(50 <= d.dynamic_range_db <= 70 for d in draws if d.dynamic_range_db is not None)
    assert all(0.8 <= d.gamma <= 1.25 and 1.0 <= d.speckle <= 1.5 for d in draws)
    assert all(0 <= d.noise[0] <= 5 and 0 <= d.noise[1] <= 0.2 for d in draws if d.noise is not None)
    assert all(d.elastic_px.shape == (2, 5, 5) and np.abs(d.elastic_px).max() <= 5.0 + 1e-4
               for d in draws if d.elastic_px is not None)


def test_augmented_frames_stay_uint8_frames():
    image, mask = labelled_frame(48)
    for seed in range(5):
        moved, moved_mask = augment(image, mask, np.random.default_rng(seed), AugmentParams(**ALWAYS))
        assert moved.dtype == moved_mask.dtype == np.uint8 and moved.shape == moved_mask.shape == (48, 48)
        assert set(np.unique(moved_mask).tolist()) <= {0, 1, 3}


# Parameters.

@pytest.mark.parametrize("values, message", [
    ({"gain": {"db": 50}}, "gain.db must be a number in [0, 40] dB, got 50"),
    ({"gain": {"p": 1.5}}, "gain.p must be a number in [0, 1], got 1.5"),
    ({"tgc": {"knots": 1}}, "tgc.knots must be a whole number in 2..32, got 1"),
    ({"tgc": {"knots": 2.5}}, "tgc.knots must be a whole number in 2..32, got 2.5"),
    ({"dynamic_range": {"low_db": 90, "high_db": 70}}, "dynamic_range.low_db must be <= dynamic_range.high_db"),
    ({"dynamic_range": {"high_db": 200}}, "dynamic_range.high_db must be a number in [10, 120] dB, got 200"),
    ({"gamma": {"low": 0}}, "gamma.low must be a number in [0.2, 5], got 0"),
    ({"speckle": {"low": 0.5}}, "speckle.low must be a number in [1, 8], got 0.5"),
    ({"noise": {"additive": -1}}, "noise.additive must be a number in [0, 64] grey levels, got -1"),
    ({"noise": {"multiplicative": "lots"}}, "noise.multiplicative must be a number in [0, 1], got 'lots'"),
    ({"elastic": {"amplitude": 0.5}}, "elastic.amplitude must be a number in [0, 0.1] of the frame side, got 0.5"),
    ({"elastic": {"grid": True}}, "elastic.grid must be a whole number in 2..32, got True"),
    ({"vflip": "yes"}, "vflip must be true or false, got 'yes'"),
    ({"rotate_deg": 400}, "rotate_deg must be a number in [0, 180] degrees, got 400"),
    ({"display_range_db": 5}, "display_range_db must be a number in [10, 120] dB, got 5"),
    ({"elastic": {"sigma": 3}}, "unknown key(s) in train.augment.elastic: sigma"),
    ({"overlay": {"p": -0.1}}, "overlay.p must be a number in [0, 1], got -0.1"),
    ({"overlay": {"count": 0}}, "overlay.count must be a whole number in 1..20, got 0"),
    ({"overlay": {"max_size": 0.01}}, "overlay.max_size must be a number in [0.02, 1] of the frame side, got 0.01"),
])
def test_bad_augment_params_name_the_key(values: dict, message: str):
    with pytest.raises(ParamsError) as error:
        build(AugmentParams, values, "train.augment")
    assert message in str(error.value)


def test_partial_sections_keep_the_other_defaults():
    params = build(AugmentParams, {"gain": {"p": 0.9}, "elastic": {"grid": 6}}, "train.augment")
    assert params.gain == GainAugment(p=0.9, db=GainAugment().db)
    assert params.elastic == ElasticAugment(p=ElasticAugment().p, amplitude=ElasticAugment().amplitude, grid=6)
    assert params.tgc == TgcAugment()
