"""benchmarks/lesion_separability.py: frame scores, the AUC and the negatives left at a sensitivity, by hand;
and the script end to end on a processed folder and a real checkpoint whose output is known."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.config import ModelParams
from pipeline.evaluation.separability import separability
from pipeline.imaging.masks import pack_masks
from pipeline.imaging.png import write_png_atomically
from pipeline.layout import IMAGES, MASKS, PROCESSED_MANIFEST
from pipeline.training.checkpoint import save_checkpoint
from pipeline.training.model import build_model

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lesion_separability.py"
sys.path.insert(0, str(SCRIPT.parent))
import lesion_separability as ls  # noqa: E402

CLASSES = ("gland", "lesion")
SIZE = 64


@pytest.mark.parametrize(("positive_scores", "negative_scores", "sensitivity", "auc", "threshold", "above"), [
    ([0.9, 0.8], [0.2, 0.1], 1.0, 1.0, 0.8, 0),         # separated
    ([0.1, 0.2], [0.8, 0.9], 1.0, 0.0, 0.1, 2),         # reversed
    ([0.5, 0.5], [0.5, 0.5, 0.5], 1.0, 0.5, 0.5, 3),    # all tied: each pair counts one half
    ([0.9, 0.6, 0.4], [0.5, 0.1], 1.0, 5 / 6, 0.4, 1),  # 5 of 6 pairs ordered; keeping all three keeps 0.5
    ([0.9, 0.6, 0.4], [0.5, 0.1], 0.5, 5 / 6, 0.6, 0),  # keeping 2 of 3 (at least half) drops the 0.4
    ([0.9, 0.6, 0.4], [0.6, 0.1], 0.5, 4.5 / 6, 0.6, 1),  # a tie at the threshold counts as a negative left
])
def test_auc_and_the_negatives_left(positive_scores, negative_scores, sensitivity, auc, threshold, above):
    scores = np.array(positive_scores + negative_scores)
    positive = np.arange(len(scores)) < len(positive_scores)
    result = separability(scores, positive, sensitivity)
    assert result.positives == len(positive_scores) and result.negatives == len(negative_scores)
    assert result.auc == pytest.approx(auc)
    assert result.threshold == pytest.approx(threshold)
    assert result.negatives_above == above


@pytest.mark.parametrize(("positive", "sensitivity", "message"), [
    ([True, True], 0.9, "needs frames with and without the class, got 2 and 0"),
    ([False, False], 0.9, "got 0 and 2"),
    ([True, False], 0.0, "sensitivity must be in (0, 1], got 0.0"),
    ([True, False], 1.5, "sensitivity must be in (0, 1], got 1.5"),
])
def test_bad_input_is_refused(positive, sensitivity, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        separability(np.array([0.3, 0.4]), np.array(positive), sensitivity)


def test_a_frame_scores_its_largest_lesion_probability_inside_the_predicted_gland():
    probabilities = np.zeros((3, 2, 4, 4))
    probabilities[0, 0, :2] = 0.9           # gland in the top half
    probabilities[0, 1, 0, 0] = 0.7         # lesion inside it
    probabilities[0, 1, 3, 3] = 0.99        # ... and a stronger one outside: ignored
    probabilities[1, 0] = 0.5               # host probability not above the threshold: no host
    probabilities[1, 1] = 0.8
    probabilities[2, 0] = 0.6
    probabilities[2, 1, 1, 2] = 0.3
    np.testing.assert_allclose(ls.frame_scores(probabilities, 1, 0, 0.5), [0.7, 0.0, 0.3])


def _write_processed(folder: Path) -> None:
    """Five 64 px frames: two with a gland and a lesion, two with a gland alone, one without a gland."""
    (folder / IMAGES).mkdir(parents=True)
    (folder / MASKS).mkdir()
    rng = np.random.default_rng(0)
    ids = []
    for index, (gland, lesion) in enumerate([(1, 1), (1, 1), (1, 0), (1, 0), (0, 0)]):
        masks = np.zeros((2, SIZE, SIZE), bool)
        masks[0, 16:48, 16:48] = gland
        masks[1, 28:36, 28:36] = lesion
        frame_id = f"P{index:03d}_F01"
        write_png_atomically(folder / IMAGES / f"{frame_id}.png", rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8))
        write_png_atomically(folder / MASKS / f"{frame_id}.png", pack_masks(masks))
        ids.append(frame_id)
    (folder / PROCESSED_MANIFEST).write_text("frame_id\n" + "\n".join(ids) + "\n")


def _constant_checkpoint(path: Path, gland_logit: float, lesion_logit: float) -> None:
    """A U-Net whose output ignores the image: its last convolution zeroed, its biases the given logits."""
    params = ModelParams(arch="Unet", encoder="resnet18", encoder_weights=None, plane_head=False)
    model = build_model(params, len(CLASSES))
    head = model.segmentation_head[0]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([gland_logit, lesion_logit]))
    save_checkpoint(path, model, params, CLASSES, SIZE, epoch=1, val_dice=0.5)


def test_the_script_scores_a_real_checkpoint_on_a_processed_folder(tmp_path: Path):
    _write_processed(tmp_path / "processed")
    _constant_checkpoint(tmp_path / "flat.pt", 10.0, 0.0)  # gland everywhere, lesion probability 0.5 everywhere
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "flat.pt"), "--processed",
                          str(tmp_path / "processed"), "--threads", "1"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].endswith("4 frames with a gland, 2 of them with a lesion; score: the largest lesion probability "
                             "inside the predicted gland")
    # every frame scores 0.5: chance, and both lesion-free frames score as high as the lesions
    assert lines[1] == (f"{tmp_path / 'flat.pt'}: AUC 0.500; a threshold of 0.500 keeps at least 90% of the 2 lesion "
                        "frames, and 2 of the 2 frames without a lesion score as high")


def test_a_class_the_checkpoint_lacks_stops_the_script(tmp_path: Path):
    _write_processed(tmp_path / "processed")
    _constant_checkpoint(tmp_path / "flat.pt", 10.0, 0.0)
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "flat.pt"), "--processed",
                          str(tmp_path / "processed"), "--class", "tumour"], capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert f"'tumour' is not a class of {tmp_path / 'flat.pt'} (gland, lesion)" in run.stderr
