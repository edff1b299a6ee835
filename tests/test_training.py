"""Training: model building, data and augmentation, loss, checkpoints, and the train stage end to end.

Tiny on purpose (32 x 32 frames, FPN/resnet18 from scratch, 2 epochs) to run on 2 CPU cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import cv2
import httpx2
import numpy as np
import pandas as pd
import pytest
import segmentation_models_pytorch as smp
import torch
import yaml
from huggingface_hub.errors import LocalEntryNotFoundError

from pipeline.config import AugmentParams, ModelParams
from pipeline.imaging.preprocessing import network_input
from pipeline.imaging.masks import pack_masks, unpack_masks
from pipeline.layout import (CHECKPOINT_FILE, DVCLIVE_DIR, IMAGES, MASKS, PROCESSED_DIR, PROCESSED_MANIFEST,
                             SPLIT_FILE)
from pipeline.loss_spec import LossParams
from pipeline.stages.train import training_ids
from pipeline.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pipeline.training.data import FrameDataset, augment, load_frames
from pipeline.training.losses import build_loss
from pipeline.training.loop import seed_everything, train_step
from pipeline.training.predict import evaluation_device, predict_probabilities
from pipeline.training.model import ProbabilityModel, WeightsUnavailableError, build_model, resolve_device

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32
CLASSES = ("gland", "lesion")
TINY_MODEL = ModelParams(arch="FPN", encoder="resnet18", encoder_weights=None)
EPOCHS = 2


def disk_frame(index: int) -> tuple[np.ndarray, np.ndarray]:
    """A (SIZE, SIZE) uint8 frame with a bright disk (gland) and, on odd frames, a dark spot in it (lesion)."""
    rng = np.random.default_rng(index)
    centre = (int(rng.integers(12, 20)), int(rng.integers(12, 20)))
    gland, lesion = np.zeros((SIZE, SIZE), np.uint8), np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(gland, centre, int(rng.integers(6, 10)), 1, -1)
    if index % 2:
        cv2.circle(lesion, centre, 3, 1, -1)
    image = 40 + 160 * gland - 80 * lesion + rng.integers(0, 20, (SIZE, SIZE))
    return image.astype(np.uint8), pack_masks(np.stack([gland, lesion]).astype(bool))


def write_project(root: Path, n_frames: int = 6) -> None:
    """A tiny project in ``root``: processed frames, manifest, split and a params.yaml for 32 px FPN/resnet18."""
    for folder in (IMAGES, MASKS):
        (root / PROCESSED_DIR / folder).mkdir(parents=True)
    ids = [f"p{index // 2}_f{index}" for index in range(n_frames)]
    for index, frame_id in enumerate(ids):
        image, mask = disk_frame(index)
        cv2.imwrite(str(root / PROCESSED_DIR / IMAGES / f"{frame_id}.png"), image)
        cv2.imwrite(str(root / PROCESSED_DIR / MASKS / f"{frame_id}.png"), mask)
    pd.DataFrame({"frame_id": ids, "patient": [i.split("_")[0] for i in ids]}).to_csv(
        root / PROCESSED_DIR / PROCESSED_MANIFEST, index=False)
    (root / SPLIT_FILE).write_text(json.dumps({"frames": {"train": ids[:4], "val": ids[4:5], "test": ids[5:]}}))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["preprocess"]["size"] = SIZE
    params["model"].update(encoder="resnet18", encoder_weights=None)
    params["train"].update(epochs=EPOCHS, batch_size=2)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def run_stage(cwd: Path) -> subprocess.CompletedProcess:
    """``python -m pipeline.stages.train`` in ``cwd``."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("TRUS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "pipeline.stages.train"], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The train stage run once on a tiny project: (project folder, finished process)."""
    root = tmp_path_factory.mktemp("project")
    write_project(root)
    return root, run_stage(root)


def test_stage_writes_checkpoint_and_metrics(trained: tuple[Path, subprocess.CompletedProcess]) -> None:
    root, result = trained
    assert result.returncode == 0, result.stderr
    model, info = load_checkpoint(root / CHECKPOINT_FILE)
    assert (info["classes"], info["size"], info["model"].encoder) == (CLASSES, SIZE, "resnet18")
    assert 1 <= info["epoch"] <= EPOCHS and 0.0 <= info["val_dice"] <= 1.0
    assert model(torch.zeros(1, 1, SIZE, SIZE)).shape == (1, len(CLASSES), SIZE, SIZE)
    metrics_dir = root / DVCLIVE_DIR / "plots" / "metrics"
    expected = ["train/loss", "val/loss", "val/dice_gland", "val/dice_lesion", "val/score", "lr"]
    for name in expected:
        table = pd.read_csv(metrics_dir / f"{name}.tsv", sep="\t")
        assert table["step"].tolist() == list(range(EPOCHS)), name
    summary = json.loads((root / DVCLIVE_DIR / "metrics.json").read_text())
    assert set(summary["val"]) == {"loss", "dice_gland", "dice_lesion", "score"}
    assert set(summary) >= {"train", "val", "lr", "step"}
    assert not (root / "dvc.yaml").exists()  # metrics and plots are declared in the project's dvc.yaml


def test_stage_without_split_fails_with_one_line(tmp_path: Path) -> None:
    write_project(tmp_path, n_frames=2)
    (tmp_path / SPLIT_FILE).unlink()
    result = run_stage(tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(SPLIT_FILE) in lines[0]


def test_stage_refuses_a_size_the_architecture_cannot_export(tmp_path: Path) -> None:
    write_project(tmp_path, n_frames=2)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["model"]["arch"] = "PSPNet"  # its ONNX export needs preprocess.size to be a multiple of 96, not 32
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(tmp_path)
    assert result.returncode == 1 and not (tmp_path / CHECKPOINT_FILE).exists()
    assert result.stderr.strip().splitlines() == [(
        "error: preprocess.size 32 does not suit model.arch PSPNet: it must be a multiple of 96 (its pyramid pooling "
        "splits the 1/8-scale features into 1, 2, 3 and 6 bins, which the ONNX exporter needs to divide them evenly)")]


def test_checkpoint_reloads_to_identical_outputs(tmp_path: Path) -> None:
    seed_everything(1)
    model = build_model(TINY_MODEL, len(CLASSES)).eval()
    path = tmp_path / "models" / "checkpoint.pt"
    save_checkpoint(path, model, TINY_MODEL, CLASSES, SIZE, epoch=3, val_dice=0.5)
    reloaded, info = load_checkpoint(path)
    images = torch.randn(2, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(model(images), reloaded(images))
    assert not reloaded.training and info["epoch"] == 3 and info["model"] == TINY_MODEL


def test_corrupt_checkpoint_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="checkpoint.pt"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_loss_decreases_on_an_easy_problem() -> None:
    seed_everything(0)
    model = build_model(TINY_MODEL, len(CLASSES))
    dataset = FrameDataset(*map(np.stack, zip(*(disk_frame(i) for i in range(4)))), len(CLASSES), 0.449, 0.226)
    images, targets, _ = map(torch.stack, zip(*(dataset[i] for i in range(len(dataset)))))
    loss_fn = build_loss(LossParams(), len(CLASSES))  # the default: Dice + BCE
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    losses = [train_step(model, images, targets, loss_fn, optimizer, scaler) for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0], losses


def square_frame() -> tuple[np.ndarray, np.ndarray]:
    """An off-centre bright rectangle (image) and the same rectangle as class 0 (bitmask)."""
    image = np.zeros((SIZE, SIZE), np.uint8)
    image[6:14, 4:20] = 255
    return image, pack_masks((image > 0)[None])


def test_augmentation_moves_mask_with_image() -> None:
    image, mask = square_frame()
    params = AugmentParams(hflip=True, rotate_deg=30.0, scale=0.2, brightness=0.0, contrast=0.0)
    for seed in range(8):
        moved, moved_mask = augment(image, mask, np.random.default_rng(seed), params)
        inside = moved > 200  # clearly inside the transformed rectangle
        assert inside.sum() > 40 and unpack_masks(moved_mask, 1)[0][inside].all()
        assert set(np.unique(moved_mask)) <= {0, 1}  # nearest neighbour: no mixed labels


def test_augmentation_is_reproducible_per_seed() -> None:
    image, mask = square_frame()
    params = AugmentParams()
    first, again, other = (augment(image, mask, np.random.default_rng(seed), params) for seed in (5, 5, 6))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])
    images, masks = map(np.stack, zip(square_frame(), square_frame()))
    datasets = [FrameDataset(images, masks, 1, 0.5, 0.25, params, seed=7) for _ in range(2)]
    assert torch.equal(datasets[0][1][0], datasets[1][1][0])
    datasets[1].epoch = 1
    assert not torch.equal(datasets[0][1][0], datasets[1][1][0])


def test_dataset_items_and_loading(tmp_path: Path) -> None:
    write_project(tmp_path, n_frames=2)
    images, masks = load_frames(tmp_path / PROCESSED_DIR, ["p0_f0", "p0_f1"], SIZE)
    image, target, plane = FrameDataset(images, masks, len(CLASSES), 0.449, 0.226)[1]
    assert image.dtype == target.dtype == torch.float32 and plane.dtype == torch.int64 and int(plane) == -1
    assert image.shape == (1, SIZE, SIZE) and target.shape == (len(CLASSES), SIZE, SIZE)
    np.testing.assert_array_equal(image.numpy(), network_input(images[1], 0.449, 0.226)[0])
    np.testing.assert_array_equal(target.numpy(), unpack_masks(masks[1], len(CLASSES)))
    with pytest.raises(ValueError, match="p0_f0.png"):
        load_frames(tmp_path / PROCESSED_DIR, ["p0_f0"], 64)


def test_empty_validation_falls_back_to_training(caplog: pytest.LogCaptureFixture) -> None:
    train, val = training_ids({"frames": {"train": ["a", "b"], "val": []}}, {"a", "b"})
    assert train == val == ["a", "b"]
    assert [r.getMessage() for r in caplog.records] == [
        "artifacts/split.json has no validation frames; validating on the training frames (the best epoch is then "
        "chosen on training data)"]
    with pytest.raises(ValueError, match="split.json"):
        training_ids({"frames": {"train": ["a", "z"], "val": []}}, {"a"})


def test_probability_model_is_sigmoid_of_logits() -> None:
    seed_everything(0)
    model = build_model(TINY_MODEL, len(CLASSES)).eval()
    images = torch.randn(1, 1, SIZE, SIZE)
    with torch.no_grad():
        logits, probabilities = model(images), ProbabilityModel(model)(images)
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    torch.testing.assert_close(probabilities, torch.sigmoid(logits))


@pytest.mark.parametrize("cuda_available, expected", [(True, "cuda"), (False, "cpu")])
def test_evaluation_runs_on_the_gpu_when_there_is_one(cuda_available: bool, expected: str) -> None:
    assert evaluation_device(cuda_available) == torch.device(expected)


def test_predicted_probabilities_are_the_sigmoid_on_the_device_asked_for() -> None:
    seed_everything(0)
    model = build_model(TINY_MODEL, len(CLASSES)).eval()
    images = np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE), dtype=np.uint8)
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(network_input(images, 0.449, 0.226)))).numpy()
    got = predict_probabilities(model, images, 0.449, 0.226, batch_size=2, device=evaluation_device())
    assert got.shape == (3, len(CLASSES), SIZE, SIZE) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("error", [LocalEntryNotFoundError("offline"), urllib.error.URLError("no route"),
                                   httpx2.ConnectError("Name or service not known")])
def test_download_failure_says_how_to_proceed(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def offline(*args: object, **kwargs: object) -> str:
        raise error

    monkeypatch.setattr(smp.encoders, "hf_hub_download", offline)
    with pytest.raises(WeightsUnavailableError) as raised:
        build_model(ModelParams(encoder="resnet18", encoder_weights="imagenet"), len(CLASSES))
    message = str(raised.value)
    assert "\n" not in message and "'resnet18'" in message
    assert "-S model.encoder_weights=null" in message and "-S model.weights_path=" in message


def test_local_encoder_weights(tmp_path: Path) -> None:
    rgb_encoder = smp.create_model("FPN", encoder_name="resnet18", encoder_weights=None, in_channels=3).encoder
    path = tmp_path / "resnet18.pth"
    torch.save(rgb_encoder.state_dict(), path)
    params = ModelParams(encoder="resnet18", encoder_weights="imagenet", weights_path=str(path))
    model = build_model(params, len(CLASSES))
    torch.testing.assert_close(model.encoder.conv1.weight, rgb_encoder.conv1.weight.sum(1, keepdim=True))
    save_checkpoint(tmp_path / "c.pt", model, params, CLASSES, SIZE, 1, 0.0)
    load_checkpoint(tmp_path / "c.pt")  # the folded grey network rebuilds without any weights
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    for bad in (tmp_path / "missing.pth", tmp_path / "wrong.pth"):
        with pytest.raises(WeightsUnavailableError, match=bad.name):
            build_model(ModelParams(encoder="resnet18", weights_path=str(bad)), 2)
