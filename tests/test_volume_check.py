"""The evaluate stage's volume check: frames chosen per patient, volumes, and the Bland-Altman summary."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation.volume import (ML, PX3, PatientFrames, agreement, bland_altman_table, choose_frames,
                                        ellipsoid_volume, patient_row)
from pipeline.stages.evaluate import volume_frames


def ellipse(width_px: int, height_px: int, shape: tuple[int, int] = (300, 400)) -> np.ndarray:
    """(H, W) bool filled ellipse of full axes ``width_px`` x ``height_px`` (odd: an exact pixel count across)."""
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (shape[1] // 2, shape[0] // 2), (width_px // 2, height_px // 2), 0, 0, 360, 1, -1)
    return mask.astype(bool)


# Transverse 201 x 141 px, sagittal 161 px long; pixel-centre lengths are one less (200, 140, 160).
TRANSVERSE, SAGITTAL = ellipse(201, 141), ellipse(161, 121)


@pytest.mark.parametrize(("spacing", "expected", "unit"), [
    ((0.2, 0.2), math.pi / 6 * 32 * 40 * 28 / 1000, ML),   # 160, 200, 140 px at 0.2 mm: 32 x 40 x 28 mm
    ((0.1, 0.1), math.pi / 6 * 16 * 20 * 14 / 1000, ML),
    (None, math.pi / 6 * 160 * 200 * 140, PX3),
])
def test_the_ellipsoid_volume_of_two_masks(spacing, expected, unit):
    volume, got_unit = ellipsoid_volume(TRANSVERSE, SAGITTAL, spacing, spacing)
    assert got_unit == unit
    assert volume == pytest.approx(expected, rel=0.03)  # each caliper end may fall 1 px short


def test_one_frame_without_a_spacing_gives_px3_not_a_mix_of_units():
    assert ellipsoid_volume(TRANSVERSE, SAGITTAL, (0.2, 0.2), None)[1] == PX3


def test_an_empty_mask_has_no_volume():
    assert ellipsoid_volume(np.zeros((10, 10), bool), SAGITTAL, None, None) is None


def test_a_model_that_is_10_percent_too_wide_gives_a_10_percent_larger_volume():
    frames = PatientFrames("P1", "t", "s", TRANSVERSE, ellipse(221, 141), SAGITTAL, SAGITTAL, (0.2, 0.2), (0.2, 0.2))
    row = patient_row(frames)
    assert row["unit"] == ML and row["transverse_frame"] == "t" and row["sagittal_frame"] == "s"
    assert 100 * (row["model"] - row["truth"]) / row["truth"] == pytest.approx(10.0, abs=1.0)


def test_a_missed_gland_is_unmeasured_not_an_error_of_minus_100_percent():
    frames = PatientFrames("P1", "t", "s", TRANSVERSE, np.zeros_like(TRANSVERSE), SAGITTAL, SAGITTAL, None, None)
    assert patient_row(frames)["model"] is None


@pytest.mark.parametrize(("planes", "px", "expected"), [
    (["transverse", "transverse", "sagittal", "sagittal"], [100, 300, 50, 80], ("f1", "f3")),
    (["transverse", "sagittal", "sagittal", ""], [100, 0, 80, 500], ("f0", "f2")),  # gland-free and unknown left out
    (["transverse", "transverse", "", ""], [100, 300, 50, 80], None),                # no sagittal frame
    (["transverse", "sagittal", "sagittal", "sagittal"], [100, 0, 0, 0], None),      # no sagittal gland
])
def test_the_frames_with_the_largest_truth_section_are_chosen(planes, px, expected):
    ids = [f"f{k}" for k in range(4)]
    assert choose_frames(pd.Series(planes, index=ids), pd.Series(px, index=ids)) == expected


def test_the_summary_follows_bland_and_altman():
    rows = pd.DataFrame({"patient": ["A", "B", "C", "D"], "transverse_frame": "t", "sagittal_frame": "s",
                         "unit": ML, "truth": [40.0, 50.0, 20.0, 30.0], "model": [44.0, 45.0, 21.0, None]})
    summary = agreement(rows, not_measurable=2)
    percent = np.array([10.0, -10.0, 5.0])
    difference = np.array([4.0, -5.0, 1.0])
    assert (summary.unit, summary.patients, summary.unmeasured, summary.not_measurable) == (ML, 3, 1, 2)
    assert summary.mean_absolute_percentage_error == pytest.approx(np.abs(percent).mean())
    assert summary.bias == pytest.approx(difference.mean())
    assert summary.limits_of_agreement == pytest.approx([difference.mean() - 1.96 * difference.std(ddof=1),
                                                         difference.mean() + 1.96 * difference.std(ddof=1)])
    assert summary.bias_percent == pytest.approx(percent.mean())
    assert summary.limits_of_agreement_percent[1] == pytest.approx(percent.mean() + 1.96 * percent.std(ddof=1))
    table = bland_altman_table(rows)
    assert table["patient"].tolist() == ["A", "B", "C"]
    assert table["mean"].tolist() == [42.0, 47.5, 20.5] and table["difference"].tolist() == [4.0, -5.0, 1.0]


def test_no_measured_patient_gives_an_empty_summary():
    rows = pd.DataFrame({"patient": ["A"], "transverse_frame": "t", "sagittal_frame": "s", "unit": ML,
                         "truth": [40.0], "model": [None]})
    summary = agreement(rows, 0).as_dict()
    assert summary["patients"] == 0 and summary["unmeasured"] == 1 and summary["bias"] is None


def test_evaluate_picks_each_patient_s_frames_from_the_manifest():
    table = pd.DataFrame({
        "patient": ["P1", "P1", "P1", "P2", "P2"],
        "plane": ["transverse", "sagittal", "transverse", "transverse", np.nan],
        "px_gland": [500, 400, 900, 300, 200]}, index=["a", "b", "c", "d", "e"])
    chosen, missing = volume_frames(list(table.index), table)
    assert chosen == {"P1": ("c", "b")} and missing == 1


def test_evaluate_without_planes_measures_no_patient():
    table = pd.DataFrame({"patient": ["P1", "P2"], "px_gland": [5, 6]}, index=["a", "b"])
    assert volume_frames(["a", "b"], table) == ({}, 2)
