"""Training on patches: where the window lands, what the dataset returns, and the checks."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from pipeline.config import ParamsError, Params, build
from pipeline.layout import CHECKPOINT_FILE
from pipeline.training.data import FrameDataset
from pipeline.training.patches import PatchParams, patch_origin
from tests.test_training import run_stage, write_project

GLAND, LESION = 1, 2


def _frame_with_lesion(size: int = 128) -> np.ndarray:
    """(size, size) bitmask: a gland block at rows/cols 40..99, a 4x4 lesion at rows 90..93, cols 20..23."""
    mask = np.zeros((size, size), np.uint8)
    mask[40:100, 40:100] = GLAND
    mask[90:94, 20:24] |= LESION
    return mask


def test_foreground_windows_hold_a_labelled_pixel_and_reach_the_rare_class():
    mask = _frame_with_lesion()
    rng = np.random.default_rng(0)
    saw_lesion = 0
    for _ in range(400):
        top, left = patch_origin(mask, 32, 1.0, rng)
        window = mask[top:top + 32, left:left + 32]
        assert 0 <= top <= 96 and 0 <= left <= 96
        assert window.any(), (top, left)
        saw_lesion += bool(np.any(window & LESION))
    # the class is drawn uniformly among the two present, so about half the windows hold the
    # lesion although it is 16 px of 3616 labelled ones
    assert 150 < saw_lesion < 260


def test_background_windows_are_uniform_over_the_frame():
    mask = _frame_with_lesion()
    rng = np.random.default_rng(1)
    origins = np.array([patch_origin(mask, 32, 0.0, rng) for _ in range(2000)])
    assert origins.min() == 0 and origins.max() == 96
    # uniform on 0..96: mean 48, standard deviation about 28.3
    assert abs(origins.mean() - 48) < 2.5
    assert abs(origins.std() - 28.3) < 2.0


@pytest.mark.parametrize(("centre", "expected"), [((2, 3), (0, 0)), ((127, 127), (96, 96)), ((60, 70), (44, 54))])
def test_a_window_near_the_edge_is_clipped_into_the_frame(centre, expected):
    mask = np.zeros((128, 128), np.uint8)
    mask[centre] = LESION
    assert patch_origin(mask, 32, 1.0, np.random.default_rng(0)) == expected


def test_an_unlabelled_frame_gets_a_uniform_window_even_when_foreground_is_asked():
    mask = np.zeros((64, 64), np.uint8)
    origins = {patch_origin(mask, 32, 1.0, np.random.default_rng(seed)) for seed in range(50)}
    assert len(origins) > 20


def test_a_window_larger_than_the_frame_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        patch_origin(np.zeros((64, 64), np.uint8), 96, 0.5, np.random.default_rng(0))


def test_the_dataset_returns_windows_of_image_and_target_together():
    image = np.arange(128 * 128, dtype=np.int64).reshape(128, 128) % 251
    images = np.stack([image.astype(np.uint8)] * 3)
    masks = np.stack([_frame_with_lesion()] * 3)
    whole = FrameDataset(images, masks, 2, 0.0, 1.0, seed=5)
    windows = FrameDataset(images, masks, 2, 0.0, 1.0, seed=5, patch=PatchParams(size=32, foreground=1.0))
    full_image, full_target, _ = whole[1]
    patch_image, patch_target, _ = windows[1]
    assert tuple(full_image.shape) == (1, 128, 128) and tuple(patch_target.shape) == (2, 32, 32)
    top, left = patch_origin(masks[1], 32, 1.0, np.random.default_rng((5, 0, 1)))
    assert np.array_equal(patch_image.numpy(), full_image.numpy()[:, top:top + 32, left:left + 32])
    assert np.array_equal(patch_target.numpy(), full_target.numpy()[:, top:top + 32, left:left + 32])
    assert patch_target.sum() > 0
    origins = set()
    for epoch in range(6):  # a new window each epoch, drawn from (seed, epoch, index)
        windows.epoch = epoch
        top, left = patch_origin(masks[1], 32, 1.0, np.random.default_rng((5, epoch, 1)))
        assert np.array_equal(windows[1][0].numpy(), full_image.numpy()[:, top:top + 32, left:left + 32])
        origins.add((top, left))
    assert len(origins) > 3


def test_the_dataset_refuses_a_window_larger_than_the_frames():
    frames = np.zeros((1, 64, 64), np.uint8)
    with pytest.raises(ValueError, match=r"train\.patch\.size 96 px is larger than the frames \(preprocess\.size 64"):
        FrameDataset(frames, frames, 2, 0.0, 1.0, patch=PatchParams(size=96))


@pytest.mark.parametrize(("patch", "message"), [
    ({"size": 100}, "multiple of 32"),
    ({"size": 0}, "multiple of 32"),
    ({"size": True}, "multiple of 32"),
    ({"foreground": 1.5}, "probability"),
    ({"foreground": "often"}, "probability"),
    ({"plane_frames": -1}, "plane_frames must be an integer >= 0"),
    ({"plane_frames": 1.5}, "plane_frames must be an integer >= 0"),
    ({"plane_frames": True}, "plane_frames must be an integer >= 0"),
    ({"shape": 32}, "shape"),
])
def test_bad_patch_params_name_the_key(patch, message):
    with pytest.raises(ParamsError, match=message):
        build(Params, {"train": {"patch": patch}}, "params.yaml")


def test_the_default_trains_on_whole_frames():
    assert build(Params, {}, "params.yaml").train.patch == PatchParams(size=None, foreground=0.5, plane_frames=0)


def test_the_train_stage_reads_train_patch(tmp_path):
    """The param reaches the stage's training data: a window larger than the 32 px frames stops it in one line."""
    write_project(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["train"]["patch"] = {"size": 64, "foreground": 0.5}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(tmp_path)
    assert result.returncode != 0
    assert "train.patch.size 64 px is larger than the frames (preprocess.size 32 px)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / CHECKPOINT_FILE).exists()
