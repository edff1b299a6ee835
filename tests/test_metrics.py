"""Evaluation metrics: one mask pair (Dice, IoU, HD95, ASSD), the class summary from pixel counts, the report."""

import math

import numpy as np
import pandas as pd
import pytest
from medpy.metric.binary import assd, hd95

from pipeline.evaluation.metrics import score_masks, surface_distances
from pipeline.evaluation.scoring import describe, frame_rows, overall_score, summarise
from pipeline.evaluation.summary import ClassSummary, class_summary, frame_overlap, selection_score

NAN = math.nan


def square(top, left, size, shape=(20, 20)):
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


def same(value, expected):
    return (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


EMPTY = np.zeros((20, 20), bool)


# A 10 x 10 square shifted by one pixel, say in x: of each square's 36 surface pixels, the 10 of
# the trailing side and the 8 inner ones of the leading side lie 1 px from the other's surface,
# the other 18 on it: ASSD = 18/36 = 0.5 px, HD95 = 1 px. With spacing (0.5, 2) mm that is 0.25 mm.
# Shifted in y with that spacing, the trailing row's 10 pixels lie 2 mm away, and the leading row's
# 8 inner ones min(2, 0.5 * columns to the nearest side) = 0.5, 1, 1.5, 2, 2, 1.5, 1, 0.5 mm:
# ASSD = (20 + 10) / 36 = 5/6 mm.
@pytest.mark.parametrize(
    "predicted, truth, spacing, dice, iou, hd95_, assd_",
    [
        (square(5, 5, 10), square(5, 5, 10), (1, 1), 1.0, 1.0, 0.0, 0.0),
        (square(5, 5, 10), square(5, 6, 10), (1, 1), 0.9, 90 / 110, 1.0, 0.5),  # shifted 1 px in x
        (square(5, 5, 10), square(5, 6, 10), (0.5, 2.0), 0.9, 90 / 110, 0.5, 0.25),  # x spacing 0.5 mm
        (square(5, 5, 10), square(6, 5, 10), (0.5, 2.0), 0.9, 90 / 110, 2.0, 5 / 6),  # y spacing 2 mm
        (EMPTY, EMPTY, (1, 1), NAN, NAN, NAN, NAN),  # not scored
        (square(0, 0, 2), EMPTY, (1, 1), 0.0, 0.0, NAN, NAN),  # invented
        (EMPTY, square(0, 0, 2), (1, 1), 0.0, 0.0, NAN, NAN),  # missed
    ],
)
def test_score_masks(predicted, truth, spacing, dice, iou, hd95_, assd_):
    scores = score_masks(predicted, truth, spacing)
    assert same(scores.dice, dice) and same(scores.iou, iou)
    assert same(scores.hd95, hd95_) and same(scores.assd, assd_)
    assert (scores.truth_pixels, scores.predicted_pixels) == (int(truth.sum()), int(predicted.sum()))
    assert scores.intersection_pixels == int((predicted & truth).sum())


def test_surface_distances_equal_medpy_on_the_whole_frame():
    """The distances are computed around the masks only; they must equal medpy's on the whole frame,
    also for masks touching the frame's edge and masks in several pieces."""
    rng = np.random.default_rng(0)
    for _ in range(25):
        masks = []
        for _ in range(2):
            mask = np.zeros((30, 40), bool)
            for _ in range(int(rng.integers(1, 4))):
                top, left = int(rng.integers(-3, 30)), int(rng.integers(-3, 40))
                height, width = rng.integers(1, 12, 2)
                mask[max(top, 0):top + height, max(left, 0):left + width] = True
            masks.append(mask)
        predicted, truth = masks
        spacing = tuple(rng.uniform(0.1, 2.0, 2))
        rows_columns = spacing[::-1]  # medpy's order
        expected = (hd95(predicted, truth, voxelspacing=rows_columns), assd(predicted, truth, voxelspacing=rows_columns))
        assert surface_distances(predicted, truth, spacing) == pytest.approx(expected)


def test_score_masks_refuses_different_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        score_masks(np.zeros((3, 4), bool), np.zeros((4, 3), bool))


# Per-frame (truth, predicted, intersection) pixel counts of one class, and per frame Dice/IoU.
FRAMES = [
    ("partial overlap", 10, 10, 5, 0.5, 5 / 15),
    ("missed", 8, 0, 0, 0.0, 0.0),
    ("invented", 0, 4, 0, 0.0, 0.0),
    ("both empty", 0, 0, 0, NAN, NAN),
    ("perfect", 6, 6, 6, 1.0, 1.0),
]


def test_frame_overlap_per_frame():
    truth, predicted, intersection = (np.array([frame[i] for frame in FRAMES]) for i in (1, 2, 3))
    dice, iou = frame_overlap(truth, predicted, intersection)
    np.testing.assert_allclose(dice, [frame[4] for frame in FRAMES])
    np.testing.assert_allclose(iou, [frame[5] for frame in FRAMES])


@pytest.mark.parametrize(
    "kept, expected",
    [
        # mean over the 4 scored frames: (0.5 + 0 + 0 + 1) / 4; IoU (1/3 + 0 + 0 + 1) / 4
        (range(5), ClassSummary(dice=0.375, iou=1 / 3, frames_with_class=3, missed_frames=1,
                                false_positive_frames=1, frames_scored=4)),
        ([3], ClassSummary(1.0, 1.0, 0, 0, 0, 0)),  # nothing to find, nothing invented
        ([], ClassSummary(1.0, 1.0, 0, 0, 0, 0)),
        ([1, 3], ClassSummary(0.0, 0.0, 1, 1, 0, 1)),  # a missed lesion costs although the other frame is empty
        ([2, 3, 4], ClassSummary(0.5, 0.5, 1, 0, 1, 2)),  # an invented one costs too
        ([0, 4], ClassSummary(0.75, 2 / 3, 2, 0, 0, 2)),
    ],
)
def test_class_summary(kept, expected):
    rows = [FRAMES[i] for i in kept]
    summary = class_summary(*(np.array([row[i] for row in rows], np.int64) for i in (1, 2, 3)))
    assert summary.as_dict() == pytest.approx(expected.as_dict())


@pytest.mark.parametrize(
    "truth, predicted, intersection, message",
    [
        ([4], [4], [5], "exceeds"),
        ([-1], [0], [0], "non-negative"),
        ([1.5], [2], [1], "integers"),
        ([1, 2], [1], [1], "shapes"),
    ],
)
def test_class_summary_refuses_bad_counts(truth, predicted, intersection, message):
    with pytest.raises(ValueError, match=message):
        class_summary(np.array(truth), np.array(predicted), np.array(intersection))


def test_selection_score_is_the_mean_class_dice():
    assert selection_score([ClassSummary(0.375, 0.3, 3, 1, 1, 4), ClassSummary(1.0, 1.0, 0, 0, 0, 0)]) == 0.6875
    with pytest.raises(ValueError, match="no class"):
        selection_score([])


def per_frame_table():
    """Frame a: gland perfect (spacing 0.5 mm), no lesion anywhere. Frame b: gland shifted 1 px, a lesion invented."""
    truth = np.stack([square(5, 5, 10), EMPTY])
    perfect = frame_rows("a", "P1", truth, truth, ["gland", "lesion"], (0.5, 0.5))
    spurious = frame_rows("b", "P2", np.stack([square(5, 6, 10), square(0, 0, 2)]), truth, ["gland", "lesion"], None)
    return pd.DataFrame(perfect + spurious)


def test_frame_rows():
    table = per_frame_table().set_index(["frame_id", "class"])
    assert table.loc[("a", "gland"), ["dice", "hd95_px", "hd95_mm", "assd_mm"]].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert math.isnan(table.loc[("a", "lesion"), "dice"])  # neither truth nor prediction: not scored
    gland_b = table.loc[("b", "gland")]
    assert gland_b[["dice", "hd95_px", "assd_px", "truth_px", "predicted_px", "intersection_px"]].tolist() == \
        pytest.approx([0.9, 1.0, 0.5, 100, 100, 90])
    assert math.isnan(gland_b["hd95_mm"]) and math.isnan(gland_b["assd_mm"])  # no spacing
    lesion_b = table.loc[("b", "lesion")]
    assert lesion_b["dice"] == 0.0 and math.isnan(lesion_b["hd95_px"]) and lesion_b["predicted_px"] == 4


def test_summary_scores_frames_with_truth_or_prediction_and_counts_them():
    summary = summarise(per_frame_table(), ["gland", "lesion"])
    assert summary["gland"] == pytest.approx({
        "dice": (1.0 + 0.9) / 2, "iou": (1.0 + 90 / 110) / 2, "hd95_px": 0.5, "hd95_mm": 0.0,  # only 'a' has a spacing
        "assd_px": 0.25, "assd_mm": 0.0, "frames_with_class": 2, "missed_frames": 0, "false_positive_frames": 0,
        "frames_scored": 2})
    assert summary["lesion"] == {
        "dice": 0.0, "iou": 0.0, "hd95_px": None, "hd95_mm": None, "assd_px": None, "assd_mm": None,
        "frames_with_class": 0, "missed_frames": 0, "false_positive_frames": 1, "frames_scored": 1}
    assert overall_score(per_frame_table(), ["gland", "lesion"]) == pytest.approx(0.95 / 2)
    assert describe(summary["lesion"]) == ("Dice 0.000 IoU 0.000 HD95 n/a px ASSD n/a px "
                                           "(0 frames with it, 0 missed, 1 false positive; 1 scored)")


def test_frame_rows_reuse_a_row_only_for_an_identical_mask():
    truth = np.stack([square(5, 5, 10), EMPTY])
    predicted = np.stack([square(5, 6, 10), EMPTY])
    earlier = [(predicted[0], {"marker": "gland row"}), (square(0, 0, 2), {"marker": "lesion row"})]
    rows = frame_rows("b", "P2", predicted, truth, ["gland", "lesion"], None, reuse=earlier)
    assert rows[0] == {"marker": "gland row"} and rows[0] is not earlier[0][1]
    assert rows[1]["class"] == "lesion" and rows[1]["predicted_px"] == 0  # a different mask is scored again
