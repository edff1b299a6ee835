"""Connected components on the mask's box, and the post-processing and review signal built on them, against the
whole-frame versions they replaced: the same labels, masks and signals."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pipeline.imaging.components import box_components
from pipeline.inference.postprocess import fill_holes, largest_component, open_organ
from pipeline.inference.review import BAND_FRACTION, MIN_PIECE_FRACTION, ReviewSignal, review_signal


def reference_largest_component(mask: np.ndarray) -> np.ndarray:
    """The former largest_component: components labelled on the whole frame."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask.astype(bool, copy=True)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def reference_fill_holes(mask: np.ndarray) -> np.ndarray:
    """The former fill_holes: the flood fill over the whole padded frame."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood_mask = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, flood_mask, (0, 0), 2, flags=4)
    return (padded != 2)[1:-1, 1:-1]


def reference_review_signal(gland_probability: np.ndarray, threshold: float) -> ReviewSignal:
    """The former review_signal: components labelled on the whole frame."""
    raw = (gland_probability > threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(raw, connectivity=8)
    if count <= 1:
        return ReviewSignal(0, None)
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = 1 + int(np.argmax(areas))
    pieces = int((areas >= MIN_PIECE_FRACTION * areas.max()).sum())
    half_width = max(2, round(BAND_FRACTION * math.sqrt(4.0 * areas.max() / math.pi)))
    x, y, w, h = stats[largest, :4]
    margin = half_width + 1
    rows = slice(max(0, y - margin), min(raw.shape[0], y + h + margin))
    columns = slice(max(0, x - margin), min(raw.shape[1], x + w + margin))
    gland = (labels[rows, columns] == largest).astype(np.uint8)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * half_width + 1, 2 * half_width + 1))
    band = cv2.dilate(gland, disk).astype(bool) & ~cv2.erode(gland, disk).astype(bool)
    p = gland_probability[rows, columns][band].astype(np.float64)
    return ReviewSignal(pieces, float(np.mean(4.0 * p * (1.0 - p))))


def random_mask(seed: int) -> np.ndarray:
    """(H, W) bool of one of four kinds: noise, equal squares (ties for the largest), ellipses, ellipses with
    specks and holes; sizes from 1 px to a whole 872x1280 frame, content anywhere including the edges."""
    rng = np.random.default_rng(seed)
    height, width = (872, 1280) if seed % 5 == 0 else (int(rng.integers(1, 70)), int(rng.integers(1, 70)))
    mask = np.zeros((height, width), np.uint8)
    kind = seed % 4
    if kind == 0:
        return rng.random((height, width)) < rng.uniform(0.02, 0.6)
    if kind == 1:
        side = int(rng.integers(1, 4))
        for _ in range(int(rng.integers(1, 30))):
            row, column = int(rng.integers(0, height)), int(rng.integers(0, width))
            mask[row:row + side, column:column + side] = 1
        return mask.astype(bool)
    for _ in range(int(rng.integers(1, 6))):
        cv2.ellipse(mask, (int(rng.integers(0, width)), int(rng.integers(0, height))),
                    (int(rng.integers(1, width // 3 + 2)), int(rng.integers(1, height // 3 + 2))),
                    float(rng.uniform(0, 180)), 0, 360, 1, -1)
    if kind == 3:
        mask ^= (rng.random((height, width)) < 0.02).astype(np.uint8)
    return mask.astype(bool)


SEEDS = range(60)


@pytest.mark.parametrize("seed", SEEDS)
def test_box_components_number_the_components_as_on_the_whole_frame(seed: int):
    mask = random_mask(seed)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    found = box_components(mask)
    assert found.count == count and found.shape == mask.shape
    np.testing.assert_array_equal(found.stats[1:], stats[1:])
    assert found.labels.sum() == labels.sum()  # no component pixel outside the box
    if count > 1:
        np.testing.assert_array_equal(found.labels, labels[found.box])
        label = int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1
        np.testing.assert_array_equal(found.component(label), labels == label)
        x, y, w, h = (int(value) for value in stats[label, :4])
        window = (slice(max(0, y - 3), min(mask.shape[0], y + h + 3)), slice(max(0, x - 3), min(mask.shape[1], x + w + 3)))
        np.testing.assert_array_equal(found.component(label, window), (labels == label)[window])


def test_box_components_of_an_empty_mask():
    found = box_components(np.zeros((5, 7), bool))
    assert found.count == 1 and not found.component(1).any() and found.component(1).shape == (5, 7)


@pytest.mark.parametrize("seed", SEEDS)
def test_largest_component_and_fill_holes_are_as_on_the_whole_frame(seed: int):
    mask = random_mask(seed)
    np.testing.assert_array_equal(largest_component(mask), reference_largest_component(mask))
    np.testing.assert_array_equal(fill_holes(mask), reference_fill_holes(mask))


@pytest.mark.parametrize("seed", SEEDS)
def test_review_signal_is_as_on_the_whole_frame(seed: int):
    mask = random_mask(seed)
    rng = np.random.default_rng(seed)
    probability = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 2) * rng.uniform(0.6, 1.0)
    probability = np.clip(probability + rng.normal(0, 0.05, mask.shape).astype(np.float32), 0, 1)
    for threshold in (0.3, 0.5):
        assert review_signal(probability, threshold) == reference_review_signal(probability, threshold)


def reference_open_organ(mask: np.ndarray, fraction: float) -> np.ndarray:
    """The former open_organ: both distance transforms on the box padded by the disk's radius."""
    mask = np.asarray(mask, bool)
    radius = round(fraction * math.sqrt(4.0 * int(mask.sum()) / math.pi))
    if radius < 1:
        return mask.copy()
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
    margin = radius + 1
    padded = np.pad(mask[box], margin)
    inside = cv2.distanceTransform(padded.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    eroded = inside > radius
    if not eroded.any():
        return mask.copy()
    outside = cv2.distanceTransform((~eroded).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    opened = np.zeros_like(mask)
    opened[box] = (outside <= radius)[margin:-margin, margin:-margin]
    return opened & mask


@pytest.mark.parametrize("seed", SEEDS)
def test_open_organ_is_as_with_the_wide_margin(seed: int):
    mask = random_mask(seed)
    for fraction in (0.0, 0.05, 0.15, 0.3):
        np.testing.assert_array_equal(open_organ(mask, fraction), reference_open_organ(mask, fraction))
