"""The probabilities mapped back onto the frame, against the implementation it replaced (kept here): the same
values, to the bit."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.imaging.geometry import plan_geometry, probabilities_to_original_frame, to_original_frame


def reference_probabilities_to_original_frame(probabilities: np.ndarray, geometry) -> np.ndarray:
    """The former mapping: the whole frame channels last, then moved to channels first."""
    channels_last = np.ascontiguousarray(probabilities.transpose(1, 2, 0))
    return np.ascontiguousarray(to_original_frame(channels_last, geometry).transpose(2, 0, 1))


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
