"""Every architecture the factory offers trains, exports to ONNX and matches PyTorch there.

One table row per architecture: segmentation_models_pytorch's (ResNet-18 encoder, random
weights) and the project's SegNet and UNetBilinear, each at the smallest input its ONNX
export allows (``check_input_size``). Plus the project architectures' own parts, the
parameters that do not apply to them, and the checkpoint round trip.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import PROJECT_ARCHS, ModelParams, ParamsError
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.loss_spec import LossParams
from pipeline.training.architectures import PROJECT_ARCHITECTURES, SegNet, UNetBilinear
from pipeline.training.architectures.segnet import max_unpool2x2
from pipeline.training.checkpoint import load_checkpoint, save_checkpoint
from pipeline.training.loop import seed_everything, train_step
from pipeline.training.losses import build_loss
from pipeline.training.model import build_model, check_input_size
from pipeline.training.onnx_export import export_checked
from tests.tiny_models import tiny_contract

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # smp's own shape checks

CLASSES = ("gland", "lesion")
# arch, input side S (the smallest multiple of 32 its ONNX export allows), parameters for 1 grey
# input channel and 2 classes (project architectures only: smp's own counts are smp's business)
ARCHITECTURES = [
    ("Unet", 64, None),
    ("UnetPlusPlus", 64, None),
    ("FPN", 64, None),
    ("DeepLabV3", 64, None),
    ("DeepLabV3Plus", 64, None),
    ("Segformer", 64, None),
    ("MAnet", 64, None),
    ("PSPNet", 96, None),
    ("Linknet", 64, None),
    ("PAN", 128, None),
    ("UPerNet", 192, None),
    ("SegNet", 64, 29_435_074),
    ("UNetBilinear", 64, 17_261_890),
]


def tiny_params(arch: str) -> ModelParams:
    return ModelParams(arch=arch, encoder="resnet18", encoder_weights=None)


def batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (1, size, size) noisy frames with a bright disk (gland) and a dark spot in it (lesion), and their truth."""
    rng = np.random.default_rng(size)
    images, targets = [], []
    for _ in range(2):
        centre = tuple(int(c) for c in rng.integers(size // 3, 2 * size // 3, 2))
        gland, lesion = np.zeros((size, size), np.uint8), np.zeros((size, size), np.uint8)
        cv2.circle(gland, centre, size // 4, 1, -1)
        cv2.circle(lesion, centre, size // 12, 1, -1)
        images.append(0.5 * gland - 0.3 * lesion + 0.1 * rng.standard_normal((size, size)))
        targets.append(np.stack([gland, lesion]))
    image_batch = torch.tensor(np.stack(images)[:, None], dtype=torch.float32)
    return image_batch, torch.tensor(np.stack(targets), dtype=torch.float32)


@pytest.mark.parametrize("arch, size, n_parameters", ARCHITECTURES, ids=[row[0] for row in ARCHITECTURES])
def test_trains_a_step_and_exports_with_parity(tmp_path: Path, arch: str, size: int, n_parameters: int | None) -> None:
    params = tiny_params(arch)
    check_input_size(params, size)
    seed_everything(0)
    model = build_model(params, len(CLASSES))
    if n_parameters is not None:
        assert sum(p.numel() for p in model.parameters()) == n_parameters
    images, targets = batch(size)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    first, last = (list(model.parameters())[i] for i in (0, -1))  # the input layer and the head
    before = first.detach().clone()
    loss = train_step(model, images, targets, build_loss(LossParams(), len(CLASSES)), optimizer,
                      torch.amp.GradScaler("cpu", enabled=False))
    assert math.isfinite(loss) and loss > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert first.grad.abs().sum() > 0 and last.grad.abs().sum() > 0  # the gradient reaches the input layer
    assert not torch.equal(first.detach(), before)
    with torch.no_grad():
        assert model.eval()(images).shape == (2, len(CLASSES), size, size)
    spec = PreprocessSpec(crop="none", size=size, resize="letterbox", interpolation="area",
                          filter=FilterSpec(method="none"))
    frames = np.random.default_rng(1).integers(0, 256, (2, size, size), dtype=np.uint8)
    error = export_checked(model, tiny_contract(spec, CLASSES), 18, frames, 1e-3, tmp_path / "model.onnx")
    assert 0.0 <= error <= 1e-3  # export_checked raises ParityError beyond 1e-3


def test_max_unpool_puts_each_value_where_its_maximum_was() -> None:
    x = torch.tensor([[1.0, 5, 2, 0], [3, 4, 8, 1], [0, 0, 7, 6], [9, 2, 1, 1]]).view(1, 1, 4, 4)
    values, indices = F.max_pool2d(x, 2, 2, return_indices=True)
    assert values.flatten().tolist() == [5, 8, 9, 7]
    expected = torch.tensor([[0.0, 5, 0, 0], [0, 0, 8, 0], [0, 0, 7, 0], [9, 0, 0, 0]]).view(1, 1, 4, 4)
    assert torch.equal(max_unpool2x2(values, indices), expected)
    x = torch.randn(3, 4, 8, 6, generator=torch.Generator().manual_seed(0))
    values, indices = F.max_pool2d(x, 2, 2, return_indices=True)
    assert torch.equal(max_unpool2x2(values, indices), F.max_unpool2d(values, indices, 2))


@pytest.mark.parametrize("network, multiple", [(SegNet(), 32), (UNetBilinear(), 16)], ids=["SegNet", "UNetBilinear"])
def test_project_architectures_upsample_without_transposed_convolutions(network: nn.Module, multiple: int) -> None:
    assert not any(isinstance(module, nn.ConvTranspose2d) for module in network.modules())
    with pytest.raises(ValueError, match=f"divisible by {multiple}; got 40x40"):
        network(torch.zeros(1, 1, 40, 40))


def test_segnet_shares_only_pooling_indices_with_its_decoder() -> None:
    seed_everything(0)
    network = SegNet(classes=2).eval()
    # VGG-16's 2-2-3-3-3 convolutions, mirrored: the decoder stage of the first encoder stage ends in the head.
    assert [stage[0][0].in_channels for stage in network.encoder] == [1, 64, 128, 256, 512]
    assert [len(stage) for stage in network.decoder] == [3, 3, 3, 2, 1]
    assert network.decoder[-1][0][0].out_channels == 64 and network.head.out_channels == 2


def test_project_architectures_refuse_pretrained_weights() -> None:
    for key, value in (("encoder_weights", "imagenet"), ("weights_path", "/weights/resnet152.pth")):
        with pytest.raises(ParamsError, match=rf"^model.{key}: SegNet trains from scratch \(it has no pretrained "
                                              rf"encoder\); set model.{key}=null$"):
            ModelParams(arch="SegNet", **{"encoder_weights": None, key: value})
    params = ModelParams(arch="unetbilinear", encoder="resnet152", encoder_weights=None)
    assert (params.arch, params.encoder) == ("UNetBilinear", "")  # the name made canonical, the encoder not applicable
    assert PROJECT_ARCHS == tuple(PROJECT_ARCHITECTURES)


def test_unsupported_and_unknown_architectures() -> None:
    with pytest.raises(ParamsError, match=r"^model.arch: DPT is not supported: its ViT encoder"):
        ModelParams(arch="DPT")
    with pytest.raises(ParamsError, match=r"type `SegNett`.*\(or the project's SegNet, UNetBilinear\)"):
        build_model(tiny_params("SegNett"), 2)


@pytest.mark.parametrize("arch, size, message", [
    ("FPN", 256, None),
    ("FPN", 100, ("preprocess.size 100 does not suit model.arch FPN: it must be a multiple of 32 (the network halves "
                  "the image 5 times)")),
    ("SegNet", 48, "it must be a multiple of 32"),
    ("PSPNet", 768, None),
    ("PSPNet", 256, ("preprocess.size 256 does not suit model.arch PSPNet: it must be a multiple of 96 (its pyramid "
                     "pooling splits the 1/8-scale features into 1, 2, 3 and 6 bins")),
    ("UPerNet", 768, None),
    ("UPerNet", 384, None),
    ("UPerNet", 256, "it must be a multiple of 192"),
    ("PAN", 128, None),
    ("PAN", 96, "it must be a multiple of 32 of at least 128"),
])
def test_input_size_rules(arch: str, size: int, message: str | None) -> None:
    if message is None:
        check_input_size(tiny_params(arch), size)
    else:
        with pytest.raises(ParamsError) as raised:
            check_input_size(tiny_params(arch), size)
        assert message in str(raised.value)


@pytest.mark.parametrize("arch", PROJECT_ARCHS)
def test_checkpoint_rebuilds_project_architectures(tmp_path: Path, arch: str) -> None:
    seed_everything(0)
    params = tiny_params(arch)
    model = build_model(params, len(CLASSES)).eval()
    save_checkpoint(tmp_path / "checkpoint.pt", model, params, CLASSES, 32, epoch=2, val_dice=0.5)
    reloaded, info = load_checkpoint(tmp_path / "checkpoint.pt")
    assert type(reloaded) is type(model) and info["model"] == params and info["model"].encoder == ""
    images = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(images), reloaded(images))
