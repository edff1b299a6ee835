"""The plane head (pipeline/training/plane_head.py): the output split, the labels, the loss, `auto`, training,
validation, the checkpoint, the ONNX export with its `plane` output and contract, the runtime and the evaluation.

Tiny on purpose: FPN/ResNet-18 from scratch at 32 px, hand-made logits, and onnx.helper models.
"""

from __future__ import annotations

import copy
import dataclasses
import csv
import json
import math
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from pipeline.cli.segment import segment_files
from pipeline.config import InferenceParams, ModelParams, ParamsError, TrainParams, build
from pipeline.evaluation.scoring import frame_plane_accuracy, plane_accuracy, predicted_plane_column
from pipeline.imaging.preprocessing import network_input, preprocess_frame
from pipeline.inference.contract import (CONTRACT_KEY, OUTPUT_NAME, PLANE_OUTPUT_NAME, ContractError, ModelContract)
from pipeline.inference.predictor import ModelLoadError, Segmenter
from pipeline.layout import CHECKPOINT_FILE, DVCLIVE_DIR, PROCESSED_DIR, PROCESSED_MANIFEST
from pipeline.loss_spec import LossParams
from pipeline.planes import PLANES
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from pipeline.training.data import FrameDataset
from pipeline.training.frame_plane import THUMBNAIL, FramePlaneClassifier, SegmenterWithFramePlane
from pipeline.training.losses import build_loss
from pipeline.training.loop import EpochMetrics, seed_everything, train_step
from pipeline.training.model import ProbabilityModel, build_model
from pipeline.training.onnx_export import build_contract, export_checked, export_onnx
from pipeline.training.patches import PatchParams
from pipeline.training.plane_head import (WholeFramePlane, plane_labels, plane_loss, resolve_plane_head, split_output,
                                          total_loss, whole_frames_per_step)
from pipeline.training.predict import predict_outputs, predict_probabilities
from pipeline.training.validation import validate
from tests.test_inference import bright_rectangle
from tests.test_training import run_stage, write_project
from tests.tiny_models import TINY_SPEC, tiny_contract, write_threshold_model

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # smp's own, when exporting

SIZE = 32
CLASSES = ("gland", "lesion")
WITH_HEAD = ModelParams(arch="FPN", encoder="resnet18", encoder_weights=None, plane_head=True)  # the frame classifier
ON_ENCODER = dataclasses.replace(WITH_HEAD, plane_classifier="encoder")  # smp's head on the encoder
WITHOUT_HEAD = ModelParams(arch="FPN", encoder="resnet18", encoder_weights=None, plane_head=False)
HEADS = pytest.mark.parametrize("with_head", [WITH_HEAD, ON_ENCODER], ids=["frame-classifier", "on-encoder"])


def network(params: ModelParams = WITH_HEAD, seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return build_model(params, len(CLASSES))


def head_of(model: nn.Module) -> nn.Module:
    """The plane head's own layers: the frame classifier, or smp's classification head."""
    return model.plane_classifier if isinstance(model, SegmenterWithFramePlane) else model.classification_head


def frames(count: int = 4) -> np.ndarray:
    """(count, SIZE, SIZE) uint8 frames with content."""
    return np.random.default_rng(0).integers(1, 256, (count, SIZE, SIZE), dtype=np.uint8)


# --- the output split and the labels ---------------------------------------------------------------------------

MASKS, PLANE_LOGITS = torch.zeros(2, 2, 4, 4), torch.zeros(2, 2)


@pytest.mark.parametrize(("output", "expected_planes"), [
    (MASKS, None),
    ((MASKS, PLANE_LOGITS), PLANE_LOGITS),
    ([MASKS, PLANE_LOGITS], PLANE_LOGITS),
], ids=["tensor", "tuple", "list"])
def test_split_output(output, expected_planes) -> None:
    masks, planes = split_output(output)
    assert masks is MASKS and planes is expected_planes


def test_plane_labels_name_transverse_0_sagittal_1_and_the_rest_unknown() -> None:
    values = ["transverse", "sagittal", "Sag", " axial ", "", None, math.nan, "coronal"]
    assert plane_labels(values).tolist() == [0, 1, 1, 0, -1, -1, -1, -1]
    assert plane_labels(values).dtype == np.int64 and PLANES == ("transverse", "sagittal")


def test_dataset_items_carry_the_plane_label_also_in_a_window() -> None:
    images, masks = frames(3), np.zeros((3, SIZE, SIZE), np.uint8)
    assert [int(item[2]) for item in FrameDataset(images, masks, 2, 0.0, 1.0)] == [-1, -1, -1]  # unknown by default
    labelled = FrameDataset(images, masks, 2, 0.0, 1.0, planes=np.array([1, -1, 0]))
    windows = FrameDataset(images, masks, 2, 0.0, 1.0, planes=np.array([1, -1, 0]), patch=PatchParams(size=32))
    for dataset in (labelled, windows):
        assert [int(item[2]) for item in dataset] == [1, -1, 0]
    batch = next(iter(torch.utils.data.DataLoader(labelled, batch_size=3)))
    assert batch[2].dtype == torch.int64 and batch[2].tolist() == [1, -1, 0]
    with pytest.raises(ValueError, match=r"planes \(2,\) must be \(3,\)"):
        FrameDataset(images, masks, 2, 0.0, 1.0, planes=np.array([0, 1]))



def test_windows_carry_their_whole_frame_for_the_plane_head_only_when_asked() -> None:
    images, masks = frames(2), np.zeros((2, SIZE, SIZE), np.uint8)
    masks[:, 8:12, 20:24] = 1  # a gland the window centres on
    windows = FrameDataset(images, masks, 2, 0.0, 1.0, planes=np.array([1, 0]),
                           patch=PatchParams(size=32, foreground=1.0))
    assert len(windows[0]) == 3
    windows.plane_frames = True
    window, target, plane, frame = windows[1]
    assert window.shape == (1, 32, 32) and frame.shape == (1, SIZE, SIZE) and int(plane) == 0
    torch.testing.assert_close(frame, torch.from_numpy(network_input(images[1], 0.0, 1.0)[0]))
    whole = FrameDataset(images, masks, 2, 0.0, 1.0, planes=np.array([1, 0]))
    whole.plane_frames = True  # no window: the item is the frame itself, nothing added
    assert len(whole[0]) == 3

# --- the loss ----------------------------------------------------------------------------------------------------

def test_plane_loss_is_the_cross_entropy_of_the_labelled_frames() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    labels = torch.tensor([0, 1, -1])
    by_hand = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))) / 2  # -log softmax of the truth
    assert float(plane_loss(logits, labels)) == pytest.approx(by_hand)
    assert float(plane_loss(logits, labels)) == pytest.approx(float(F.cross_entropy(logits[:2], labels[:2])))


def test_without_labelled_frames_the_plane_loss_is_zero_and_keeps_the_graph() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = plane_loss(logits, torch.tensor([-1, -1]))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(logits.grad, torch.zeros(2, 2))


def test_total_loss_adds_the_weighted_plane_term() -> None:
    masks, targets = torch.randn(3, 2, 4, 4), torch.randint(0, 2, (3, 2, 4, 4)).float()
    planes, labels = torch.tensor([[1.0, -1.0], [0.5, 0.0], [0.0, 3.0]]), torch.tensor([1, -1, 1])
    bce = nn.BCEWithLogitsLoss()
    segmentation = float(bce(masks, targets))
    expected = segmentation + 0.2 * float(F.cross_entropy(planes[[0, 2]], labels[[0, 2]]))
    assert float(total_loss((masks, planes), targets, labels, bce, 0.2)) == pytest.approx(expected)
    assert float(total_loss(masks, targets, labels, bce, 0.2)) == segmentation  # no head
    assert float(total_loss((masks, planes), targets, torch.tensor([-1, -1, -1]), bce, 0.2)) == segmentation


# --- `auto` and the params ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("arch", "plane_head", "labels", "expected"), [
    ("FPN", "auto", [0, 1, -1], True),
    ("FPN", "auto", [0, 0, -1], False),  # one plane only: nothing to tell apart
    ("FPN", "auto", [-1, -1], False),
    ("Unet", "auto", [1, 0], True),
    ("SegNet", "auto", [0, 1], False),
    ("UNetBilinear", "auto", [0, 1], False),
    ("FPN", True, [0, -1], True),
    ("FPN", False, [0, 1], False),
])
def test_auto_is_on_with_both_planes_and_an_smp_architecture(arch, plane_head, labels, expected) -> None:
    weights = {"encoder_weights": None}
    resolved = resolve_plane_head(ModelParams(arch=arch, plane_head=plane_head, **weights), np.array(labels))
    assert resolved.plane_head is expected and resolved.arch == arch


@pytest.mark.parametrize(("params", "labels", "message"), [
    ({"plane_head": True}, [-1, -1], "model.plane_head is true but no training frame has a known plane"),
    ({"plane_head": "yes"}, [0, 1], "model.plane_head must be auto, true or false, got 'yes'"),
    ({"arch": "SegNet", "plane_head": True}, [0, 1], "model.plane_head: SegNet has no plane classifier"),
    ({"plane_classifier": "thumbnail"}, [0, 1], "model.plane_classifier must be frame or encoder, got 'thumbnail'"),
])
def test_a_plane_head_that_cannot_be_is_refused_naming_the_key(params, labels, message) -> None:
    with pytest.raises(ParamsError, match=message):
        resolve_plane_head(ModelParams(**{"encoder_weights": None, **params}), np.array(labels))


def test_the_stage_refuses_plane_head_true_without_labelled_frames_in_one_line(tmp_path: Path) -> None:
    write_project(tmp_path)  # no plane column in the manifest
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["model"]["plane_head"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage(tmp_path)
    assert result.returncode == 1 and not (tmp_path / CHECKPOINT_FILE).exists()
    assert result.stderr.strip().splitlines() == [
        "error: model.plane_head is true but no training frame has a known plane (the processed manifest's plane "
        "column is empty); tag the frames' planes or set model.plane_head=auto"]


@pytest.mark.parametrize("patch", [None, 32], ids=["whole-frames", "windows"])
def test_the_stage_turns_the_head_on_for_both_planes_and_logs_its_accuracy(tmp_path: Path, patch: int | None) -> None:
    write_project(tmp_path)  # 6 frames: 4 training, 1 validation, 1 test
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["train"]["patch"].update(size=patch, plane_frames=2)  # windows: the head sees whole frames too
    # (2 of each batch of 2: at 32 px the deepest features are 1x1, and BatchNorm needs 2 values per channel)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    manifest = pd.read_csv(tmp_path / PROCESSED_DIR / PROCESSED_MANIFEST, dtype=str)
    manifest["plane"] = ["transverse", "sagittal", "", "sagittal", "transverse", "sagittal"]
    manifest.to_csv(tmp_path / PROCESSED_DIR / PROCESSED_MANIFEST, index=False)
    result = run_stage(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "FPN/resnet18 with the plane head" in result.stdout
    model, info = load_checkpoint(tmp_path / CHECKPOINT_FILE)
    assert info["model"].plane_head is True  # `auto`, resolved, so the network rebuilds exactly
    masks, planes = split_output(model(torch.zeros(1, 1, SIZE, SIZE)))
    assert masks.shape == (1, 2, SIZE, SIZE) and planes.shape == (1, 2)
    accuracy = pd.read_csv(tmp_path / DVCLIVE_DIR / "plots" / "metrics" / "val" / "plane_accuracy.tsv", sep="\t")
    assert accuracy["step"].tolist() == [0, 1] and set(accuracy["plane_accuracy"]) <= {0.0, 1.0}  # 1 val frame
    summary = json.loads((tmp_path / DVCLIVE_DIR / "metrics.json").read_text())
    assert set(summary["val"]) == {"loss", "dice_gland", "dice_lesion", "score", "plane_accuracy"}


# --- training and validation ---------------------------------------------------------------------------------------

def batch() -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(frames(2).astype(np.float32) / 255).unsqueeze(1)
    return images, (images > 0.5).float().expand(-1, 2, -1, -1).contiguous()


def step(model: nn.Module, planes: torch.Tensor) -> float:
    images, targets = batch()
    loss_fn = build_loss(LossParams(), len(CLASSES))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    return train_step(model, images, targets, loss_fn, optimizer, torch.amp.GradScaler("cpu", enabled=False),
                      planes=planes, plane_weight=0.2)


@HEADS
@pytest.mark.parametrize(("planes", "head_changes"), [([0, 1], True), ([-1, -1], False)],
                         ids=["labelled", "unlabelled"])
def test_a_step_trains_the_head_on_labelled_frames_only(with_head, planes, head_changes) -> None:
    model, labels = network(with_head), torch.tensor(planes)
    reference, (images, targets) = copy.deepcopy(model), batch()
    head = copy.deepcopy(head_of(model).state_dict())
    torch.manual_seed(5)  # the head's dropout draws the same mask in both forward passes
    with torch.no_grad():
        masks, plane_logits = reference.train()(images)
        segmentation = build_loss(LossParams(), len(CLASSES))(masks, targets)
        expected = segmentation + 0.2 * plane_loss(plane_logits, labels)
    torch.manual_seed(5)
    loss = step(model, labels)
    assert loss == pytest.approx(float(expected), rel=1e-6)
    if not head_changes:
        assert loss == pytest.approx(float(segmentation), rel=1e-6)
    # BatchNorm's running statistics move with every forward pass: the parameters say whether it learnt
    changed = [not torch.equal(value, head_of(model).state_dict()[name]) for name, value in head.items()
               if "running" not in name and "num_batches" not in name]
    assert any(changed) is head_changes



@pytest.mark.parametrize(("whole_frames", "side"), [(2, SIZE), (1, 2 * SIZE)], ids=["every-frame", "the-first"])
def test_on_windows_the_head_learns_from_the_whole_frames(whole_frames: int, side: int) -> None:
    """smp's head on the encoder: M = ``whole_frames`` of the 2 windows' frames go whole through the encoder and
    the head, with gradient. (One frame needs 64 px: at 32 px its deepest features are 1x1, too few for BatchNorm
    in training.)"""
    model, labels = network(ON_ENCODER), torch.tensor([0, 1])
    reference, (frames_batch, _) = copy.deepcopy(model), batch()
    windows, targets = frames_batch[..., 8:24, 8:24].contiguous(), (frames_batch[..., 8:24, 8:24] > 0.5).float()
    windows, targets = F.pad(windows, (8, 8, 8, 8)), F.pad(targets, (8, 8, 8, 8)).expand(-1, 2, -1, -1).contiguous()
    whole = F.interpolate(frames_batch, size=side)[:whole_frames]
    torch.manual_seed(5)  # the head's dropout: the window's pass draws first, then the frames'
    with torch.no_grad():
        masks, window_planes = reference.train()(windows)
        frame_planes = reference.classification_head(reference.encoder(whole)[-1])
        segmentation = build_loss(LossParams(), len(CLASSES))(masks, targets)
        expected = segmentation + 0.2 * plane_loss(frame_planes, labels[:whole_frames])
    assert not torch.allclose(window_planes[:whole_frames], frame_planes)  # the windows are not what it judges
    trained = WholeFramePlane(copy.deepcopy(model))
    _, planes = trained(windows, whole)
    plane_loss(planes, labels[:whole_frames]).backward()  # the masks take no part: the frames' gradient alone
    assert planes.shape == (whole_frames, 2)
    assert all(parameter.grad is not None for parameter in trained.network.encoder.parameters())
    torch.manual_seed(5)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = train_step(WholeFramePlane(model), windows, targets, build_loss(LossParams(), len(CLASSES)), optimizer,
                      torch.amp.GradScaler("cpu", enabled=False), planes=labels, plane_weight=0.2, plane_frames=whole)
    assert loss == pytest.approx(float(expected), rel=1e-6)  # the labels of the first M frames
    assert {name.removeprefix("network.") for name, _ in WholeFramePlane(model).named_parameters()} == {
        name for name, _ in model.named_parameters()}  # the wrapped network's, nothing of its own


def test_on_windows_the_frame_classifier_judges_every_whole_frame_and_the_masks_the_windows() -> None:
    model, labels = network(), torch.tensor([0, 1])
    frames_batch, _ = batch()
    windows = F.pad(frames_batch[..., 8:24, 8:24], (8, 8, 8, 8)).contiguous()
    trained = WholeFramePlane(copy.deepcopy(model)).eval()  # eval: no dropout draws to keep in step
    with torch.no_grad():
        masks, planes = trained(windows, frames_batch)
        model.eval()
        torch.testing.assert_close(masks, model.segmenter(windows), rtol=0, atol=0)
        torch.testing.assert_close(planes, model.plane_classifier(frames_batch), rtol=0, atol=0)
    assert masks.shape == (2, 2, SIZE, SIZE) and planes.shape == (2, 2)
    _, planes = trained.train()(windows, frames_batch)
    plane_loss(planes, labels).backward()  # the plane's gradient reaches its classifier, not the segmentation
    assert all(parameter.grad is not None for parameter in trained.network.plane_classifier.parameters())
    assert all(parameter.grad is None for parameter in trained.network.segmenter.parameters())


@pytest.mark.parametrize(("side", "thumbnail"), [(32, 32), (64, 64), (256, 64), (768, 64)])
def test_the_frame_classifier_sees_a_thumbnail_of_at_most_64_px(side: int, thumbnail: int) -> None:
    classifier = FramePlaneClassifier().eval()
    seen: list[tuple[int, ...]] = []
    classifier.features.register_forward_pre_hook(lambda _, inputs: seen.append(tuple(inputs[0].shape)))
    frame = torch.arange(side * side, dtype=torch.float32).reshape(1, 1, side, side) / side ** 2
    assert classifier(frame).shape == (1, len(PLANES))
    assert seen == [(1, 1, thumbnail, thumbnail)] and thumbnail <= THUMBNAIL
    if side > THUMBNAIL:  # box averages: the thumbnail's mean is the frame's
        torch.testing.assert_close(F.avg_pool2d(frame, side // THUMBNAIL).mean(), frame.mean())


@pytest.mark.parametrize(("with_head", "patch", "expected"), [
    (WITH_HEAD, {"size": 128}, 4),  # the frame classifier: every frame of the batch
    (WITH_HEAD, {"size": 128, "plane_frames": 1}, 4),  # plane_frames is for the head on the encoder
    (ON_ENCODER, {"size": 128}, 0),  # the windows only
    (ON_ENCODER, {"size": 128, "plane_frames": 1}, 1),
    (WITH_HEAD, {}, 0),  # whole frames already
    (WITHOUT_HEAD, {"size": 128, "plane_frames": 1}, 0),
])
def test_whole_frames_per_step(with_head: ModelParams, patch: dict, expected: int) -> None:
    train = build(TrainParams, {"batch_size": 4, "patch": patch}, "train")
    assert whole_frames_per_step(with_head, train) == expected


class FixedOutputs(nn.Module):
    """Hand-made mask and plane logits of the frame whose index is written in pixel (0, 0) of the image."""

    def __init__(self, masks: torch.Tensor, planes: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("masks", masks)
        self.register_buffer("planes", planes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = images[:, 0, 0, 0].long()
        return self.masks[index], self.planes[index]


def test_validation_reports_the_plane_accuracy_on_frames_of_a_known_plane() -> None:
    masks = torch.randn(4, 2, 8, 8)
    targets = (torch.randn(4, 2, 8, 8) > 0).float()
    plane_logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 3.0]])  # says t, t, s, s
    labels = torch.tensor([0, 1, -1, 1])  # right, wrong, unknown, right: 2 of 3
    images = torch.arange(4, dtype=torch.float32).reshape(4, 1, 1, 1).expand(4, 1, 8, 8)
    loader = [(images[:2], targets[:2], labels[:2]), (images[2:], targets[2:], labels[2:])]
    bce = nn.BCEWithLogitsLoss()
    loss, summaries, accuracy = validate(FixedOutputs(masks, plane_logits), loader, bce, torch.device("cpu"), None, CLASSES,
                                 InferenceParams(), plane_weight=0.5)
    assert accuracy == pytest.approx(2 / 3)
    first = float(bce(masks[:2], targets[:2])) + 0.5 * float(F.cross_entropy(plane_logits[:2], labels[:2]))
    second = float(bce(masks[2:], targets[2:])) + 0.5 * float(F.cross_entropy(plane_logits[3:], labels[3:]))
    assert loss == pytest.approx((2 * first + 2 * second) / 4)
    _, _, none = validate(FixedOutputs(masks, plane_logits), [(images, targets, torch.full((4,), -1))], bce,
                          torch.device("cpu"), None, CLASSES, InferenceParams())
    assert none is None  # a head, but no frame of a known plane
    metrics = EpochMetrics(1, 0.5, loss, summaries, 1e-3, plane_accuracy=accuracy)
    assert metrics.as_metrics()["val/plane_accuracy"] == pytest.approx(2 / 3)
    assert EpochMetrics.from_record(metrics.as_record()) == metrics


# --- the checkpoint and the probabilities ---------------------------------------------------------------------------

@HEADS
def test_checkpoint_rebuilds_the_head_and_an_old_checkpoint_has_none(tmp_path: Path, with_head: ModelParams) -> None:
    model = network(with_head).eval()
    save_checkpoint(tmp_path / "head.pt", model, with_head, CLASSES, SIZE, epoch=1, val_dice=0.5)
    reloaded, info = load_checkpoint(tmp_path / "head.pt")
    images = torch.randn(2, 1, SIZE, SIZE)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(images), reloaded(images)))
    assert info["model"] == with_head
    old = network(WITHOUT_HEAD)
    save_checkpoint(tmp_path / "old.pt", old, WITHOUT_HEAD, CLASSES, SIZE, epoch=1, val_dice=0.5)
    payload = torch.load(tmp_path / "old.pt", weights_only=True)
    del payload["model"]["plane_head"]  # as written before the plane head existed
    torch.save(payload, tmp_path / "old.pt")
    reloaded, info = load_checkpoint(tmp_path / "old.pt")
    assert info["model"].plane_head is False and isinstance(reloaded(images), torch.Tensor)


def test_a_checkpoint_from_before_the_frame_classifier_has_the_head_on_the_encoder(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "encoder.pt", network(ON_ENCODER).eval(), ON_ENCODER, CLASSES, SIZE, epoch=1,
                    val_dice=0.5)
    payload = torch.load(tmp_path / "encoder.pt", weights_only=True)
    del payload["model"]["plane_classifier"]  # as written before the key existed
    torch.save(payload, tmp_path / "encoder.pt")
    reloaded, info = load_checkpoint(tmp_path / "encoder.pt")
    assert info["model"] == ON_ENCODER and reloaded.classification_head is not None


def test_probabilities_of_a_network_with_and_without_the_head() -> None:
    model, images = network().eval(), frames(3)
    with torch.no_grad():
        masks, plane_logits = model(torch.from_numpy(network_input(images, 0.449, 0.226)))
        probabilities, planes = ProbabilityModel(model)(torch.zeros(1, 1, SIZE, SIZE))
    assert probabilities.shape == (1, 2, SIZE, SIZE) and planes.sum().item() == pytest.approx(1.0)
    masks_p, planes_p = predict_outputs(model, images, 0.449, 0.226, batch_size=2)
    # batches of 2 against one of 3: float32 convolutions may sum in another order (seen: 1.3e-6)
    np.testing.assert_allclose(masks_p, torch.sigmoid(masks).numpy(), atol=1e-5)
    np.testing.assert_allclose(planes_p, torch.softmax(plane_logits, dim=1).numpy(), atol=1e-5)
    np.testing.assert_array_equal(predict_probabilities(model, images, 0.449, 0.226, batch_size=2), masks_p)
    assert predict_outputs(network(WITHOUT_HEAD), images, 0.449, 0.226)[1] is None


# --- the export, the contract and the runtime ------------------------------------------------------------------------

@HEADS
def test_the_export_has_a_plane_output_that_matches_torch_and_a_contract_naming_the_planes(
        tmp_path: Path, with_head: ModelParams) -> None:
    model, images, path = network(with_head).eval(), frames(3), tmp_path / "model.onnx"
    contract = tiny_contract(TINY_SPEC, plane_classes=PLANES)
    error = export_checked(model, contract, 18, images, 1e-3, path)
    graph = onnx.load(str(path))
    assert [output.name for output in graph.graph.output] == [OUTPUT_NAME, PLANE_OUTPUT_NAME] == ["probabilities",
                                                                                                 "plane"]
    stored = json.loads({prop.key: prop.value for prop in graph.metadata_props}[CONTRACT_KEY])
    assert stored["plane_classes"] == ["transverse", "sagittal"] and stored["plane_output"] == "plane"
    segmenter = Segmenter(path)
    assert segmenter.contract == contract
    masks, planes = segmenter.run_processed(images)
    reference, reference_planes = predict_outputs(model, images, contract.mean, contract.std)
    assert planes.shape == (3, 2) and np.allclose(planes.sum(axis=1), 1.0, atol=1e-6)
    assert float(np.abs(planes - reference_planes).max()) <= error <= 1e-3
    assert float(np.abs(masks - reference).max()) <= error
    segmentation = segmenter.segment(bright_rectangle(40, 50))
    assert list(segmentation.plane_probabilities) == list(PLANES)
    assert sum(segmentation.plane_probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert segmentation.plane == max(PLANES, key=segmentation.plane_probabilities.__getitem__)


@pytest.mark.parametrize(("params", "plane_classes"), [(WITH_HEAD, None), (WITHOUT_HEAD, PLANES)],
                         ids=["head-without-classes", "classes-without-head"])
def test_the_export_refuses_a_contract_that_does_not_fit_the_network(tmp_path: Path, params, plane_classes) -> None:
    with pytest.raises(ValueError, match="plane head but the contract's plane_classes"):
        export_onnx(network(params).eval(), SIZE, 18, tmp_path / "m.onnx", tiny_contract(plane_classes=plane_classes))


def test_build_contract_names_the_planes_only_with_a_head() -> None:
    from pipeline.config import Params
    assert build_contract(Params(), {}, {}, plane_head=True).plane_classes == PLANES
    assert build_contract(Params(), {}, {}).plane_classes is None


def test_an_old_contract_without_plane_classes_loads_and_bad_ones_are_refused() -> None:
    payload = json.loads(tiny_contract(plane_classes=PLANES).to_json())
    assert ModelContract.from_json(json.dumps(payload)).plane_classes == PLANES
    old = {key: value for key, value in payload.items() if key not in ("plane_classes", "plane_output")}
    assert ModelContract.from_json(json.dumps(old)) == tiny_contract()
    for bad in (["transverse"], ["a", "a"], "transverse", ["a", 2]):
        with pytest.raises(ContractError, match="plane_classes"):
            ModelContract.from_json(json.dumps({**payload, "plane_classes": bad}))


def test_a_contract_naming_planes_needs_the_plane_output(tmp_path: Path) -> None:
    path = write_threshold_model(tmp_path / "m.onnx", tiny_contract(plane_classes=PLANES))  # no plane output
    with pytest.raises(ModelLoadError, match="m.onnx: the contract names plane classes but the model has no 'plane'"):
        Segmenter(path)


def areas(segmenter: Segmenter, frame: np.ndarray, folder: Path) -> list[dict[str, str]]:
    folder.mkdir()
    (folder / "in").mkdir()
    import cv2
    cv2.imwrite(str(folder / "in" / "a.png"), frame)
    segment_files(segmenter, [folder / "in" / "a.png"], folder)
    with open(folder / "areas.csv", newline="") as file:
        return list(csv.DictReader(file))


def test_trus_segment_writes_the_predicted_plane_and_its_probability(tmp_path: Path) -> None:
    dark = bright_rectangle()  # mostly black: the tiny model's plane output says sagittal
    rows = areas(Segmenter(write_threshold_model(tmp_path / "plane.onnx", plane=True)), dark, tmp_path / "plane")
    assert list(rows[0])[-4:-2] == ["plane", "plane_probability"] and len(rows) == 2
    mean = preprocess_frame(dark, TINY_SPEC).image.mean() / 255  # what the network sees: the letterboxed frame
    expected = 1 / (1 + math.exp(-2 * 40.0 * (0.5 - mean)))  # softmax of 40 (m - 0.5) [1, -1]: sagittal
    for row in rows:
        assert row["plane"] == "sagittal" and float(row["plane_probability"]) == pytest.approx(expected, abs=1e-4)
    rows = areas(Segmenter(write_threshold_model(tmp_path / "old.onnx")), dark, tmp_path / "old")
    assert [(row["plane"], row["plane_probability"]) for row in rows] == [("", ""), ("", "")]


# --- the evaluation ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("predicted", "truth", "expected"), [
    ({"a": "transverse", "b": "sagittal", "c": "transverse", "d": "sagittal"},
     {"a": "transverse", "b": "transverse", "c": "unknown", "d": "sagittal"},
     {"plane_accuracy": 2 / 3, "plane_frames": 3}),
    ({"a": "sagittal"}, {"a": "sagittal"}, {"plane_accuracy": 1.0, "plane_frames": 1}),
    ({"a": "sagittal"}, {"a": "unknown"}, {"plane_accuracy": None, "plane_frames": 0}),
    (None, {"a": "sagittal"}, {"plane_accuracy": None, "plane_frames": None}),  # no plane head
])
def test_evaluation_plane_accuracy(predicted, truth, expected) -> None:
    predicted = None if predicted is None else pd.Series(predicted, dtype=object)
    assert plane_accuracy(predicted, pd.Series(truth, dtype=object)) == pytest.approx(expected)


@pytest.mark.parametrize(("predicted", "expected_column", "expected_accuracy"), [
    ({"a": "transverse", "b": "sagittal", "c": "transverse"}, ["transverse", "transverse", "sagittal", "transverse"],
     {"plane_accuracy": 0.5, "plane_frames": 2}),  # a right, b wrong, c of no known plane
    ({"a": "sagittal"}, ["sagittal", "sagittal", "", ""], {"plane_accuracy": 0.0, "plane_frames": 2}),
    (None, ["", "", "", ""], {"plane_accuracy": None, "plane_frames": None}),  # no plane head
], ids=["head", "frames-the-head-did-not-see", "no-head"])
def test_the_per_frame_tables_carry_the_predicted_plane(predicted, expected_column, expected_accuracy) -> None:
    rows = pd.DataFrame({"frame_id": ["a", "a", "b", "c"], "class": ["gland", "lesion", "gland", "gland"],
                         "plane": ["transverse", "transverse", "transverse", "unknown"]})
    predicted = None if predicted is None else pd.Series(predicted, dtype=object)
    rows["predicted_plane"] = predicted_plane_column(rows["frame_id"], predicted)
    assert rows["predicted_plane"].tolist() == expected_column
    assert frame_plane_accuracy(rows) == pytest.approx(expected_accuracy)
