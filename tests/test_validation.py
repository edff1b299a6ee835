"""Validation during training scores what the evaluate stage reports: the same masks give the same numbers.

A fixed "model" returns hand-made logits for four 8 x 8 frames; validation (pipeline/training/loop.py)
and the evaluate stage's scoring (pipeline/evaluation/scoring.py) both score them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from pipeline.config import InferenceParams, ModelParams, ParamsError, TrainParams
from pipeline.evaluation.scoring import frame_rows, overall_score, summarise
from pipeline.evaluation.summary import ClassSummary
from pipeline.inference.contract import NO_POSTPROCESS, PostprocessSpec
from pipeline.inference.postprocess import postprocess_masks
from pipeline.training.data import FrameDataset
from pipeline.training.loop import EpochMetrics, train_model
from pipeline.training.validation import inference_masks, pixel_counts, validate

CLASSES = ("gland", "lesion")
# opening off: the hand-counted masks are small blocks it would round (tests/test_postprocess.py tests it)
POSTPROCESS = PostprocessSpec("gland", largest_component=True, fill_holes=True, inside_organ=("lesion",), opening=0.0)


def box(rows: slice, columns: slice) -> np.ndarray:
    mask = np.zeros((8, 8), bool)
    mask[rows, columns] = True
    return mask


def pixels(*points: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((8, 8), bool)
    for row, column in points:
        mask[row, column] = True
    return mask


NONE = np.zeros((8, 8), bool)
GLAND = box(slice(1, 5), slice(1, 5))
RING = GLAND & ~pixels((2, 2))
# Per frame: (truth gland, truth lesion, predicted gland, predicted lesion), before post-processing.
FRAMES = [
    (GLAND, NONE, GLAND | pixels((7, 7)), pixels((0, 7))),  # a stray gland pixel, a lesion outside the gland
    (GLAND, box(slice(2, 4), slice(2, 4)), RING, pixels((2, 2), (2, 3))),  # a hole; half the lesion
    (box(slice(0, 4), slice(0, 8)), pixels((1, 1)), box(slice(0, 2), slice(0, 8)), NONE),  # half the gland, no lesion
    (box(slice(4, 8), slice(4, 8)), NONE, NONE, pixels((5, 5))),  # gland missed; a lesion with no gland
]
# After post-processing: gland Dice 1, 1, 32/48, 0 -> 2/3 (IoU 1, 1, 1/2, 0 -> 5/8); lesion: frame 0 and 3
# not scored (the lesions outside the gland are gone), frame 1 Dice 2*2/(4+2) = 2/3 (IoU 1/2), frame 2 missed.
EXPECTED = {
    "gland": ClassSummary(dice=2 / 3, iou=5 / 8, frames_with_class=4, missed_frames=1, false_positive_frames=0,
                          frames_scored=4),
    "lesion": ClassSummary(dice=1 / 3, iou=1 / 4, frames_with_class=2, missed_frames=1, false_positive_frames=0,
                           frames_scored=2),
}
# Without it: gland 32/33, 30/31, 2/3, 0; lesion 0 (invented), 2/3, 0 (missed), 0 (invented).
EXPECTED_RAW = {"gland": (32 / 33 + 30 / 31 + 2 / 3) / 4, "lesion": (2 / 3) / 4}


class FixedLogits(nn.Module):
    """Returns the stored logits of the frames whose index is written in pixel (0, 0) of the image."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits[images[:, 0, 0, 0].long()]


def frames() -> tuple[FixedLogits, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], np.ndarray]:
    """The model, two batches of two frames (images carry the frame index; planes unknown), and the (4, 2, 8, 8)
    truth."""
    truth = np.array([[gland, lesion] for gland, lesion, _, _ in FRAMES])
    predicted = np.array([[gland, lesion] for _, _, gland, lesion in FRAMES])
    logits = torch.from_numpy(np.where(predicted, 3.0, -3.0).astype(np.float32))
    images = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1, 1).expand(4, 1, 8, 8)
    targets = torch.from_numpy(truth.astype(np.float32))
    planes = torch.full((4,), -1, dtype=torch.int64)
    return FixedLogits(logits), [(images[:2], targets[:2], planes[:2]), (images[2:], targets[2:], planes[2:])], truth


def evaluate_stage_summary(postprocess: PostprocessSpec) -> tuple[dict, float]:
    """The evaluate stage's summary and score of the same frames and masks."""
    _, _, truth = frames()
    rows = []
    for index, (_, _, gland, lesion) in enumerate(FRAMES):
        predicted = postprocess_masks(np.stack([gland, lesion]), CLASSES, postprocess)
        rows += frame_rows(f"f{index}", "P1", predicted, truth[index], CLASSES, None)
    table = pd.DataFrame(rows)
    return summarise(table, CLASSES), overall_score(table, CLASSES)


def run_validation(inference: InferenceParams) -> tuple[float, dict[str, ClassSummary]]:
    model, loader, _ = frames()
    loss, summaries, plane_accuracy = validate(model, loader, nn.BCEWithLogitsLoss(), torch.device("cpu"), None,
                                               CLASSES, inference)
    assert plane_accuracy is None  # no plane head
    return loss, summaries


def test_validation_scores_what_the_evaluate_stage_reports():
    loss, summaries = run_validation(InferenceParams(threshold=0.5, postprocess=POSTPROCESS))
    for name, expected in EXPECTED.items():
        assert summaries[name].as_dict() == pytest.approx(expected.as_dict())
    reported, score = evaluate_stage_summary(POSTPROCESS)
    for name, summary in summaries.items():
        assert {key: reported[name][key] for key in summary.as_dict()} == summary.as_dict()
    metrics = EpochMetrics(epoch=1, train_loss=0.0, val_loss=loss, val=summaries, lr=1e-3)
    assert metrics.score == score == pytest.approx(0.5)
    model, loader, _ = frames()
    all_logits = model.logits
    all_targets = torch.cat([targets for _, targets, _ in loader])
    assert loss == pytest.approx(float(nn.BCEWithLogitsLoss()(all_logits, all_targets)))


def test_validation_without_postprocessing_matches_the_raw_report():
    _, summaries = run_validation(InferenceParams(threshold=0.5, postprocess=NO_POSTPROCESS))
    reported, score = evaluate_stage_summary(NO_POSTPROCESS)
    for name, expected in EXPECTED_RAW.items():
        assert summaries[name].dice == pytest.approx(expected) == reported[name]["dice"]
    assert summaries["lesion"].false_positive_frames == 2 == reported["lesion"]["false_positive_frames"]
    assert EpochMetrics(1, 0.0, 0.0, summaries, 1e-3).score == pytest.approx(score)


def test_epoch_metrics_for_dvclive():
    summaries = {"gland": ClassSummary(0.9, 0.8, 3, 0, 0, 3), "lesion": ClassSummary(0.4, 0.3, 2, 1, 1, 3)}
    metrics = EpochMetrics(epoch=2, train_loss=0.5, val_loss=0.25, val=summaries, lr=1e-4)
    assert metrics.as_metrics() == pytest.approx({"train/loss": 0.5, "val/loss": 0.25, "val/dice_gland": 0.9,
                                                  "val/dice_lesion": 0.4, "val/score": 0.65, "lr": 1e-4})


def test_inference_masks_threshold_strictly_above():
    logits = torch.tensor([0.0, 0.1, -0.1, 5.0]).reshape(1, 1, 2, 2).expand(1, 2, 2, 2)  # sigmoid(0) = 0.5
    masks = inference_masks(logits, CLASSES, InferenceParams(threshold=0.5, postprocess=NO_POSTPROCESS))
    assert masks.dtype == torch.bool and masks[0, 0].tolist() == [[False, True], [False, True]]
    high = inference_masks(logits, CLASSES, InferenceParams(threshold=0.9, postprocess=NO_POSTPROCESS))
    assert high[0, 1].tolist() == [[False, False], [False, True]]


def test_pixel_counts():
    truth = torch.zeros(1, 2, 3, 3, dtype=torch.bool)
    predicted = torch.zeros_like(truth)
    truth[0, 0, :2] = True  # 6 px
    predicted[0, 0, 1:] = True  # 6 px, 3 shared
    predicted[0, 1, 0, 0] = True
    assert pixel_counts(predicted, truth).tolist() == [[[6, 6, 3], [0, 1, 0]]]


def test_training_refuses_a_postprocess_on_unknown_classes_before_it_starts(tmp_path):
    frames_ = FrameDataset(np.zeros((2, 32, 32), np.uint8), np.zeros((2, 32, 32), np.uint8), 2, 0.0, 1.0)
    with pytest.raises(ParamsError, match="'lesion', which is not in data.classes"):
        train_model(ModelParams(encoder="resnet18", encoder_weights=None), TrainParams(), ("gland", "tumour"), frames_,
                    frames_, tmp_path / "checkpoint.pt", tmp_path / "dvclive", inference=InferenceParams())
    assert not (tmp_path / "dvclive").exists() and not (tmp_path / "checkpoint.pt").exists()
