"""The review flag: its signal on hand-made probability maps, its calibration, and its place in the contract."""

from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import pytest

from pipeline.imaging.spec import PreprocessSpec
from pipeline.inference.contract import ContractError, ModelContract
from pipeline.inference.review import ReviewSignal, ReviewSpec, calibrate_review, review_reason, review_signal

SHAPE = (200, 260)


def disk_map(centres=((130, 100),), radius=50, blur=0.0, inside=0.99, outside=0.01) -> np.ndarray:
    """A probability map: ``inside`` on disks, ``outside`` elsewhere, smoothed by a Gaussian of sigma ``blur`` px."""
    mask = np.zeros(SHAPE, np.uint8)
    for centre in centres:
        cv2.circle(mask, centre, radius, 1, -1)
    p = np.where(mask.astype(bool), inside, outside).astype(np.float32)
    return cv2.GaussianBlur(p, (0, 0), blur) if blur else p


@pytest.mark.parametrize(
    "case, probabilities, pieces, low, high",
    [
        ("sharp disk", disk_map(), 1, 0.0, 0.06),  # 4 x 0.99 x 0.01 on the band
        ("blurred disk", disk_map(blur=6.0), 1, 0.3, 0.9),
        ("nothing", np.full(SHAPE, 0.1, np.float32), 0, None, None),
        ("two disks", disk_map(((60, 100), (200, 100)), radius=40), 2, 0.0, 0.06),
        ("a disk and a speck", np.maximum(disk_map(), disk_map(((240, 20),), radius=3)), 1, 0.0, 0.06),
        ("everywhere", np.full(SHAPE, 0.9, np.float32), 1, None, None),  # no border in the frame
        # a background row: 13 gland rows in the band (half-width 5% of 257 px) at 4 x 0.9 x 0.1, 1 row at 0
        ("everywhere but a row", np.pad(np.full((199, 260), 0.9, np.float32), ((0, 1), (0, 0))), 1,
         0.36 * 13 / 14 - 1e-6, 0.36 * 13 / 14 + 1e-6),
    ],
)
def test_the_signal(case, probabilities, pieces, low, high):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of an empty band
        signal = review_signal(probabilities, 0.5)
    assert signal.pieces == pieces, case
    assert signal.fills_frame == (case == "everywhere")
    if low is None:
        assert signal.uncertainty is None
    else:
        assert low <= signal.uncertainty <= high, (case, signal.uncertainty)


def test_blurrier_borders_are_less_certain():
    values = [review_signal(disk_map(blur=blur), 0.5).uncertainty for blur in (0.0, 2.0, 4.0, 8.0)]
    assert values == sorted(values) and values[-1] > 5 * values[0]


SPEC = ReviewSpec(uncertainty=0.3, dice_floor=0.9, frames=10, needing_review=2, sensitivity=1.0, specificity=0.9)


@pytest.mark.parametrize(
    "signal, spec, reason",
    [
        (ReviewSignal(0, None), SPEC, "no gland found"),
        (ReviewSignal(3, 0.1), None, "the gland is in 3 pieces"),
        (ReviewSignal(1, 0.45), SPEC, "uncertain gland border (0.450 > 0.300)"),
        (ReviewSignal(1, 0.25), SPEC, None),
        (ReviewSignal(1, 0.95), None, None),  # no calibrated threshold: only absent, broken or frame-filling glands
        (ReviewSignal(1, None, fills_frame=True), None, "the gland fills the whole frame"),
        (ReviewSignal(1, None, fills_frame=True), SPEC, "the gland fills the whole frame"),
    ],
)
def test_the_reason(signal, spec, reason):
    assert review_reason(signal, spec) == reason


@pytest.mark.parametrize(
    "uncertainties, dices, threshold, sensitivity, specificity",
    [
        ([0.1, 0.2, 0.15, 0.5, 0.6], [0.95, 0.93, 0.96, 0.7, 0.85], 0.35, 1.0, 1.0),  # separable: midway between
        ([0.1, 0.2, 0.5], [0.95, 0.8, 0.96], 0.15, 1.0, 0.5),  # the best J (0.5): flag 0.2 and 0.5, midway 0.1-0.2
        ([0.1, 0.2, 0.15], [0.95, 0.93, 0.96], 0.2, None, 1.0),  # none needed review: flag beyond the worst seen
        ([0.1, 0.2], [0.5, 0.6], 0.0, 1.0, None),  # all needed review: flag everything
    ],
)
def test_calibration(uncertainties, dices, threshold, sensitivity, specificity):
    spec = calibrate_review(uncertainties, dices, 0.9)
    assert spec.uncertainty == pytest.approx(threshold, abs=1e-9)
    assert (spec.sensitivity, spec.specificity) == (sensitivity, specificity)
    assert spec.frames == len(dices) and spec.needing_review == sum(d < 0.9 for d in dices)


@pytest.mark.parametrize("uncertainties, dices", [([], []), ([0.1], [0.9, 0.8])])
def test_calibration_refuses_bad_input(uncertainties, dices):
    with pytest.raises(ValueError, match="one Dice per uncertainty"):
        calibrate_review(uncertainties, dices)


def contract_json(**review) -> str:
    contract = ModelContract(classes=("gland", "lesion"), preprocess=PreprocessSpec(size=64), mean=0.4, std=0.2)
    payload = json.loads(contract.to_json())
    payload["review"] = review or None
    return json.dumps(payload)


def test_the_contract_keeps_the_review_spec_and_old_contracts_have_none():
    contract = ModelContract(classes=("gland",), preprocess=PreprocessSpec(size=64), mean=0.4, std=0.2, review=SPEC)
    assert ModelContract.from_json(contract.to_json()).review == SPEC
    assert ModelContract.from_json(contract_json()).review is None
    with pytest.raises(ContractError, match="review thresholds out of range"):
        ModelContract.from_json(contract_json(**{**SPEC.to_dict(), "uncertainty": 1.5}))
