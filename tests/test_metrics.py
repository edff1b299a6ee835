import math

import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation.scoring import frame_rows, summarise
from pipeline.evaluation.metrics import score_masks


def square(top, left, size, shape=(20, 20)):
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


@pytest.mark.parametrize(
    "predicted, truth, spacing, dice, iou, hd95",
    [
        (square(5, 5, 10), square(5, 5, 10), (1, 1), 1.0, 1.0, 0.0),
        (square(5, 5, 10), square(5, 6, 10), (1, 1), 0.9, 90 / 110, 1.0),  # shifted 1 px in x
        (square(5, 5, 10), square(5, 6, 10), (0.5, 2.0), 0.9, 90 / 110, 0.5),  # x spacing 0.5 mm
        (square(5, 5, 10), square(6, 5, 10), (0.5, 2.0), 0.9, 90 / 110, 2.0),  # y spacing 2 mm
        (np.zeros((20, 20), bool), np.zeros((20, 20), bool), (1, 1), 1.0, 1.0, 0.0),
        (square(0, 0, 2), np.zeros((20, 20), bool), (1, 1), 0.0, 0.0, math.nan),
    ],
)
def test_score_masks(predicted, truth, spacing, dice, iou, hd95):
    scores = score_masks(predicted, truth, spacing)
    assert scores.dice == pytest.approx(dice) and scores.iou == pytest.approx(iou)
    assert (math.isnan(scores.hd95) and math.isnan(hd95)) or scores.hd95 == pytest.approx(hd95)


def test_summary_counts_only_frames_with_the_class_and_false_positives():
    truth = np.stack([square(5, 5, 10), np.zeros((20, 20), bool)])
    perfect = frame_rows("a", "P1", truth, truth, ["gland", "lesion"], (0.5, 0.5))
    spurious = frame_rows("b", "P2", np.stack([square(5, 6, 10), square(0, 0, 2)]), truth, ["gland", "lesion"], None)
    summary = summarise(pd.DataFrame(perfect + spurious), ["gland", "lesion"])
    assert summary["gland"]["dice"] == pytest.approx((1.0 + 0.9) / 2)
    assert summary["gland"]["hd95_mm"] == pytest.approx(0.0)  # only frame 'a' has a spacing
    assert summary["gland"]["frames_with_class"] == 2
    assert summary["lesion"]["frames_with_class"] == 0 and summary["lesion"]["dice"] is None
    assert summary["lesion"]["false_positive_frames"] == 1
