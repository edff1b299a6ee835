"""Diffusion filters on 0-255 grey data: isotropic, Perona-Malik (against medpy), SRAD, the spec."""

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.imaging.diffusion import apply_filter, isotropic_diffusion, perona_malik_diffusion, to_uint8
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.imaging.srad import compress, decompress, speckle_q0_squared, srad_diffusion
from pipeline.synthetic import render_phantom

PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"
RAYLEIGH_CV = float(np.sqrt(4 / np.pi - 1))  # std / mean of fully developed speckle's envelope, 0.5227


def speckle_image(shape=(64, 96), echo_right=4.0, seed=0, dynamic_range_db=60.0) -> np.ndarray:
    """Log-compressed fully developed speckle, uint8: two regions meeting at column W/2.

    Envelope = echo * |complex Gaussian| (echo 1 on the left, ``echo_right`` on the right),
    displayed as 100 + (255 / dr) * 20 log10(envelope), like a scanner's B-mode.
    """
    rng = np.random.default_rng(seed)
    echo = np.where(np.arange(shape[1]) < shape[1] // 2, 1.0, echo_right)
    envelope = np.abs(rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * echo
    grey = 100 + 255 / dynamic_range_db * 20 * np.log10(envelope)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)


def phantom_image(seed=0) -> np.ndarray:
    """A small synthetic TRUS frame (fan, gland, shadows, burned-in text), (96, 128) uint8."""
    frame = render_phantom(np.random.default_rng(seed), 256, 192, with_lesion=True)
    return cv2.resize(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY), (128, 96), interpolation=cv2.INTER_AREA)


def checkerboard(shape=(24, 32)) -> np.ndarray:
    """0/255 checkerboard, uint8: the largest differences an explicit scheme can meet."""
    return (255 * ((np.indices(shape).sum(axis=0) % 2) == 0)).astype(np.uint8)


def edge_profile(image: np.ndarray) -> tuple[float, float]:
    """(contrast, rise) of the column-mean profile across the edge at W/2 of a speckle_image.

    contrast: mean of 4 columns right of the edge (2 px away) minus 4 columns left of it;
    rise: fraction of the contrast climbed within the 2 columns at the edge (1.0 = a step).
    """
    profile = image.astype(np.float64).mean(axis=0)
    mid = image.shape[1] // 2
    contrast = profile[mid + 2: mid + 6].mean() - profile[mid - 6: mid - 2].mean()
    return contrast, (profile[mid] - profile[mid - 2]) / contrast


def coefficient_of_variation(region: np.ndarray) -> float:
    return float(region.std() / region.mean())


# ---------------------------------------------------------------- isotropic

@pytest.mark.parametrize("time, sigma", [(4.5, 3.0), (2.0, 2.0), (0.5, 1.0)])
def test_isotropic_diffusion_is_gaussian_of_sigma_sqrt_2t(time, sigma):
    image = np.zeros((65, 65), np.float32)
    image[32, 32] = 1000.0
    out = isotropic_diffusion(image, time=time)
    ys, xs = np.mgrid[:65, :65]
    assert float((out * (xs - 32) ** 2).sum() / out.sum()) == pytest.approx(sigma ** 2, rel=0.02)
    assert float((out * (ys - 32) ** 2).sum() / out.sum()) == pytest.approx(sigma ** 2, rel=0.02)
    assert out.sum() == pytest.approx(1000.0, rel=1e-3)  # the heat equation conserves mass
    assert np.array_equal(isotropic_diffusion(image, 0.0), image)


# ---------------------------------------------------------------- Perona-Malik

@pytest.mark.parametrize("conductance", ["exponential", "quadratic"])
def test_perona_malik_keeps_a_strong_edge_and_smooths_noise(conductance):
    rng = np.random.default_rng(0)
    step = np.where(np.arange(64) < 32, 60.0, 200.0)[None, :].repeat(64, axis=0).astype(np.float32)
    noisy = step + rng.normal(0, 8, step.shape).astype(np.float32)
    out = perona_malik_diffusion(noisy, iterations=20, kappa=30, gamma=0.2, conductance=conductance)
    assert out[:, 4:28].std() < 0.5 * noisy[:, 4:28].std()  # flat region smoothed
    assert out[:, 34:].mean() - out[:, :30].mean() > 130  # the 140-level edge survives
    assert out.min() >= noisy.min() - 1e-3 and out.max() <= noisy.max() + 1e-3  # no new extrema


@pytest.mark.parametrize(
    "image, conductance, option, kappa, gamma, iterations",
    [
        ("phantom", "exponential", 1, 30.0, 0.2, 10),
        ("phantom", "quadratic", 2, 30.0, 0.2, 10),
        ("phantom", "exponential", 1, 8.0, 0.25, 20),
        ("phantom", "quadratic", 2, 8.0, 0.25, 20),
        ("speckle", "exponential", 1, 50.0, 0.1, 5),
        ("speckle", "quadratic", 2, 50.0, 0.1, 5),
        ("speckle", "exponential", 1, 255.0, 0.25, 1),
        ("speckle", "quadratic", 2, 15.0, 0.15, 30),
    ],
)
def test_perona_malik_matches_medpy(image, conductance, option, kappa, gamma, iterations):
    """Both run in float32; measured differences are 1e-5..2e-4 grey levels here. (Small kappa with
    many steps puts edges in Perona-Malik's backward-diffusion regime, |d| > kappa / sqrt 2, which
    amplifies float32 rounding in both - there medpy itself drifts ~1e-3 from float64.)"""
    from medpy.filter.smoothing import anisotropic_diffusion

    pixels = phantom_image() if image == "phantom" else speckle_image((96, 128))
    ours = perona_malik_diffusion(pixels, iterations, kappa, gamma, conductance)
    # medpy on the 2-D grey image, unit voxel spacing, kappa in the same 0-255 units
    theirs = anisotropic_diffusion(pixels.astype(np.float64), niter=iterations, kappa=kappa, gamma=gamma,
                                   voxelspacing=(1.0, 1.0), option=option)
    assert float(np.abs(ours.astype(np.float64) - theirs).max()) < 1e-3
    assert float(np.abs(ours - pixels).max()) > 1.0  # and the filter really did something


@pytest.mark.parametrize("conductance", ["exponential", "quadratic"])
@pytest.mark.parametrize("kappa, gamma", [(5.0, 0.25), (30.0, 0.25), (255.0, 0.25), (30.0, 0.1)])
def test_perona_malik_is_stable_on_a_checkerboard(conductance, kappa, gamma):
    image = checkerboard()
    out = perona_malik_diffusion(image, 50, kappa, gamma, conductance)
    assert out.min() >= -1e-3 and out.max() <= 255 + 1e-3
    assert out.mean() == pytest.approx(image.mean(), abs=1e-2)  # zero-flux borders conserve the mean


@pytest.mark.parametrize("kwargs", [dict(kappa=0.0), dict(gamma=0.26), dict(gamma=0.0), dict(conductance="tukey")])
def test_perona_malik_rejects_unstable_or_unknown_settings(kwargs):
    settings = dict(iterations=1, kappa=30.0, gamma=0.2, conductance="exponential") | kwargs
    with pytest.raises(ValueError):
        perona_malik_diffusion(np.zeros((8, 8), np.uint8), **settings)


# ---------------------------------------------------------------- SRAD

def test_srad_reduces_speckle_and_keeps_the_edge_sharp():
    image = speckle_image()
    out = srad_diffusion(image, iterations=15, step=0.2, window=7, dynamic_range_db=60.0)
    for columns in (slice(8, 40), slice(56, 88)):  # both homogeneous regions, clear of the edge
        assert coefficient_of_variation(out[:, columns]) < 0.3 * coefficient_of_variation(image[:, columns])
    contrast_in, rise_in = edge_profile(image)
    contrast_out, rise_out = edge_profile(out)
    assert rise_in > 0.9 and contrast_in == pytest.approx(50, abs=3)  # a one-pixel 12 dB step
    assert contrast_out == pytest.approx(contrast_in, rel=0.05)
    assert rise_out > 0.75  # still a 2-pixel step
    # control: isotropic diffusion that smooths the speckle as much smears the edge
    blurred = isotropic_diffusion(image, time=1.0)
    assert coefficient_of_variation(blurred[:, 8:40]) < 0.3 * coefficient_of_variation(image[:, 8:40])
    assert edge_profile(blurred)[1] < 0.5


@pytest.mark.parametrize("image", ["speckle", "phantom", "checkerboard", "dot", "noise"])
@pytest.mark.parametrize("dynamic_range_db", [0.0, 60.0, 120.0])
def test_srad_never_creates_new_extrema(image, dynamic_range_db):
    pixels = {
        "speckle": lambda: speckle_image((48, 64)),
        "phantom": phantom_image,
        "checkerboard": checkerboard,
        "dot": lambda: np.pad(np.full((1, 1), 200, np.uint8), 12, constant_values=40),
        "noise": lambda: np.random.default_rng(2).integers(0, 256, (40, 30), dtype=np.uint8),
    }[image]()
    out = srad_diffusion(pixels, iterations=30, step=0.25, window=5, dynamic_range_db=dynamic_range_db)
    assert np.isfinite(out).all()
    assert out.min() >= pixels.min() - 1e-3 and out.max() <= pixels.max() + 1e-3
    # the scheme is conservative in the envelope: zero-flux borders keep its mean
    assert decompress(out, dynamic_range_db).mean() == pytest.approx(
        decompress(pixels, dynamic_range_db).mean(), rel=1e-3)


@pytest.mark.parametrize("level", [0, 1, 77, 255])
@pytest.mark.parametrize("dynamic_range_db", [0.0, 60.0])
def test_srad_keeps_a_constant_image_constant(level, dynamic_range_db):
    image = np.full((20, 30), level, np.uint8)
    out = srad_diffusion(image, iterations=10, step=0.25, window=7, dynamic_range_db=dynamic_range_db)
    assert float(np.abs(out - level).max()) < 1e-3
    spec = FilterSpec(method="srad", srad_dynamic_range_db=dynamic_range_db)
    assert np.array_equal(apply_filter(image, spec), image)


@pytest.mark.parametrize("kwargs", [dict(step=0.26), dict(step=0.0), dict(window=1), dict(dynamic_range_db=-1.0)])
def test_srad_rejects_unstable_or_invalid_settings(kwargs):
    settings = dict(iterations=1, step=0.2, window=7, dynamic_range_db=60.0) | kwargs
    with pytest.raises(ValueError):
        srad_diffusion(np.full((8, 8), 50, np.uint8), **settings)
    with pytest.raises(ValueError, match="2-D"):
        srad_diffusion(np.zeros((4, 4, 3), np.uint8), 1, 0.2, 7, 60.0)


@pytest.mark.parametrize("shape", [(64, 64), (96, 128)])
@pytest.mark.parametrize("amplitude", [1.0, 50.0])
def test_speckle_q0_is_the_coefficient_of_variation_of_speckle(shape, amplitude):
    rng = np.random.default_rng(3)
    envelope = amplitude * np.abs(rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.float32)
    content = np.ones((shape[0] // 7, shape[1] // 7), bool)
    assert np.sqrt(speckle_q0_squared(envelope, 7, content)) == pytest.approx(RAYLEIGH_CV, rel=0.05)
    # windows marked as background (no content) are left out of the median
    envelope[:, : shape[1] // 2] = 3.0  # flat, coefficient of variation 0
    content[:, : shape[1] // 14] = False
    assert np.sqrt(speckle_q0_squared(envelope, 7, content)) == pytest.approx(RAYLEIGH_CV, rel=0.1)


@pytest.mark.parametrize("dynamic_range_db, grey, envelope", [(60.0, 0, 1.0), (60.0, 255, 1000.0),
                                                             (60.0, 85, 10.0), (0.0, 0, 1.0), (0.0, 255, 256.0)])
def test_decompress_undoes_the_display_log_compression(dynamic_range_db, grey, envelope):
    j = decompress(np.full((2, 2), grey, np.uint8), dynamic_range_db)
    assert float(j[0, 0]) == pytest.approx(envelope, rel=1e-5)
    assert float(compress(j, dynamic_range_db)[0, 0]) == pytest.approx(grey, abs=1e-3)


# ---------------------------------------------------------------- apply_filter and the spec

def test_apply_filter_returns_uint8_and_none_is_identity():
    image = np.random.default_rng(1).integers(0, 256, (40, 50), dtype=np.uint8)
    assert np.array_equal(apply_filter(image, FilterSpec(method="none")), image)
    for method in ("isotropic", "perona_malik", "srad"):
        out = apply_filter(image, FilterSpec(method=method))
        assert out.dtype == np.uint8 and out.shape == image.shape and out.std() < image.std()
        assert image.min() <= out.min() and out.max() <= image.max()


@pytest.mark.parametrize("method, expected", [
    ("isotropic", lambda image, s: isotropic_diffusion(image, s.time)),
    ("perona_malik", lambda image, s: perona_malik_diffusion(image, s.iterations, s.kappa, s.gamma, s.conductance)),
    ("srad", lambda image, s: srad_diffusion(image, s.srad_iterations, s.srad_step, s.srad_window,
                                             s.srad_dynamic_range_db)),
])
def test_apply_filter_rounds_the_named_filter(method, expected):
    image = phantom_image(seed=1)
    spec = FilterSpec(method=method)
    assert np.array_equal(apply_filter(image, spec), np.clip(np.rint(expected(image, spec)), 0, 255).astype(np.uint8))


def test_to_uint8_rounds_half_to_even_and_saturates():
    values = np.array([[-3.0, -0.4, 0.5, 1.5, 2.5, 127.49, 254.5, 255.4, 300.0]], np.float32)
    assert to_uint8(values).tolist() == [[0, 0, 0, 2, 2, 127, 254, 255, 255]]


@pytest.mark.parametrize("key, value", [
    ("method", "gaussian"), ("conductance", "tukey"), ("time", -1.0), ("time", 201.0),
    ("iterations", -1), ("iterations", 2.5), ("iterations", True), ("kappa", 0.0), ("kappa", 256.0),
    ("gamma", 0.0), ("gamma", 0.26), ("gamma", "0.2"), ("srad_iterations", 501), ("srad_step", 0.3),
    ("srad_step", float("nan")), ("srad_window", 2), ("srad_window", 65), ("srad_dynamic_range_db", 5.0),
    ("srad_dynamic_range_db", 121.0),
])
def test_filter_spec_rejects_bad_values_naming_the_key(key, value):
    with pytest.raises(ValueError, match=f"filter.{key}"):
        FilterSpec(**{key: value})


@pytest.mark.parametrize("key, value", [("gamma", 0.25), ("srad_step", 0.25), ("srad_dynamic_range_db", 0.0),
                                        ("iterations", 0), ("srad_window", 3), ("kappa", 255)])
def test_filter_spec_accepts_the_range_bounds(key, value):
    assert getattr(FilterSpec(**{key: value}), key) == value


def test_filter_spec_round_trips_and_old_metadata_still_loads():
    spec = PreprocessSpec(filter=FilterSpec(method="srad", srad_iterations=5, srad_window=9))
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    old = spec.to_dict()
    old["filter"] = {k: v for k, v in old["filter"].items() if not k.startswith("srad_")}
    assert PreprocessSpec.from_dict(old).filter.srad_iterations == FilterSpec().srad_iterations


def test_params_yaml_sets_every_filter_field():
    section = yaml.safe_load(PARAMS_YAML.read_text())["preprocess"]["filter"]
    assert set(section) == {f.name for f in dataclasses.fields(FilterSpec)}
    FilterSpec(**section)
