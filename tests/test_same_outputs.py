"""The probabilities mapped back onto the frame and the depth scale's tick candidates, against the implementations
they replaced (kept here): the same values, to the bit."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline.imaging.depth_scale import MIN_CONTRAST, tick_candidates
from pipeline.imaging.fan import detect_fan
from pipeline.imaging.geometry import plan_geometry, probabilities_to_original_frame, to_original_frame
from pipeline.synthetic.variants import VARIANTS
from tests.test_depth_scale import ruled_frame, variant_frame


def reference_probabilities_to_original_frame(probabilities: np.ndarray, geometry) -> np.ndarray:
    """The former mapping: the whole frame channels last, then moved to channels first."""
    channels_last = np.ascontiguousarray(probabilities.transpose(1, 2, 0))
    return np.ascontiguousarray(to_original_frame(channels_last, geometry).transpose(2, 0, 1))


def reference_tick_candidates(gray: np.ndarray, fan_mask: np.ndarray) -> np.ndarray:
    """The former tick_candidates: bool masks and 32-bit labels."""
    height, width = gray.shape
    outside = ~cv2.dilate(fan_mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if not outside.any():
        return np.empty((0, 4))
    values = gray[outside]
    black = float(np.median(values))
    otsu, _ = cv2.threshold(values.reshape(1, -1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    level = max(float(otsu), black + MIN_CONTRAST)
    marks = ((gray > level) & outside).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(marks, connectivity=8)
    max_height, max_length = max(3, round(0.008 * height)), max(8, round(0.06 * width))
    rows = []
    for index in range(1, count):
        x, _, w, h, area = stats[index]
        if h <= max_height and h <= w <= max_length and w >= 2 and area >= 0.5 * w * h:
            rows.append((x, x + w - 1, centroids[index][1], w))
    return np.array(rows, float).reshape(-1, 4)


@pytest.mark.parametrize("seed", range(40))
def test_probabilities_are_mapped_back_as_before(seed: int):
    rng = np.random.default_rng(seed)
    size, classes = int(rng.choice([16, 64, 255, 256])), int(rng.integers(1, 5))
    height, width = int(rng.integers(8, 900)), int(rng.integers(8, 1300))
    x, y = int(rng.integers(0, width // 3)), int(rng.integers(0, height // 3))
    box = (x, y, int(rng.integers(1, width - x + 1)), int(rng.integers(1, height - y + 1)))
    geometry = plan_geometry(width, height, box, size, "letterbox" if seed % 2 else "stretch")
    probabilities = rng.random((classes, size, size), dtype=np.float32)
    mapped = probabilities_to_original_frame(probabilities, geometry)
    assert mapped.dtype == np.float32 and mapped.flags.c_contiguous
    np.testing.assert_array_equal(mapped, reference_probabilities_to_original_frame(probabilities, geometry))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_tick_candidates_are_found_as_before(name: str):
    for seed in (0, 1):
        gray, _ = variant_frame(name, seed)
        fan = detect_fan(gray).mask
        np.testing.assert_array_equal(tick_candidates(gray, fan), reference_tick_candidates(gray, fan))


def test_tick_candidates_as_before_on_many_marks_and_odd_levels():
    gray = ruled_frame([50.0, 90.0, 130.0, 170.0], [12, 6, 12, 6])
    rng = np.random.default_rng(3)
    gray[300:, 420:] = rng.integers(0, 256, (100, 180), dtype=np.uint8)  # noise: many small marks
    fan = np.zeros(gray.shape, bool)
    fan[50:350, 110:410] = True
    for image in (gray, np.full(gray.shape, 200, np.uint8), gray // 2 + 1):
        np.testing.assert_array_equal(tick_candidates(image, fan), reference_tick_candidates(image, fan))
    np.testing.assert_array_equal(tick_candidates(gray, np.ones(gray.shape, bool)), np.empty((0, 4)))
