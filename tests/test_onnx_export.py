"""ONNX export (pipeline/training/onnx_export.py): the contract travels with the model, and a model
that ONNX Runtime does not reproduce is never written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from pipeline.config import ModelParams
from pipeline.files.atomic import partial_name
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.contract import CONTRACT_KEY, ModelContract
from pipeline.inference.predictor import Segmenter
from pipeline.training.model import build_model
from pipeline.training.onnx_export import ParityError, export_checked
from pipeline.training.predict import predict_probabilities
from tests.tiny_models import tiny_contract

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # BranchOnInput's, and smp's own

SIZE = 32
SPEC = PreprocessSpec(crop="none", size=SIZE, resize="letterbox", interpolation="area",
                      filter=FilterSpec(method="isotropic", time=1.0))
CONTRACT = ModelContract(**{**tiny_contract(SPEC).__dict__, "mean": 0.449, "std": 0.226, "threshold": 0.4,
                            "metrics": {"gland": {"dice": 0.91, "iou": 0.84}, "lesion": {"dice": 0.5}},
                            "dataset_version": "0123456789abcdef", "code_version": "abc1234+modified",
                            "note": "SYNTHETIC test"})


def frames(count: int = 3) -> np.ndarray:
    """(count, SIZE, SIZE) uint8 processed frames with content (no frame is all zeros)."""
    return np.random.default_rng(0).integers(1, 256, (count, SIZE, SIZE), dtype=np.uint8)


def conv_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1)).eval()


def smp_model() -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelParams(arch="FPN", encoder="resnet18", encoder_weights=None), 2).eval()


class BranchOnInput(nn.Module):
    """Logits +conv(x) when any input value is non-zero, else -conv(x). The exporter traces an all-zero
    dummy input, so the ONNX graph always takes the second branch: where PyTorch gives p, ONNX Runtime
    gives 1 - p (a classic tracing fault, which the parity check must catch)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.conv(x)
        return logits if bool((x != 0).any()) else -logits


@pytest.mark.parametrize("build", [conv_model, smp_model], ids=["conv", "fpn-resnet18"])
def test_export_checked_writes_a_model_whose_contract_round_trips(tmp_path: Path, build):
    model, images = build(), frames()
    path = tmp_path / "models" / "model.onnx"
    error = export_checked(model, CONTRACT, 18, images, 1e-3, path)
    assert 0.0 <= error <= 1e-3
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # no .partial left
    stored = {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}[CONTRACT_KEY]
    assert ModelContract.from_json(stored) == CONTRACT
    segmenter = Segmenter(path)
    assert segmenter.contract == CONTRACT and segmenter.classes == ("gland", "lesion")
    exported = segmenter.predict_processed(images)
    reference = predict_probabilities(model, images, CONTRACT.mean, CONTRACT.std)
    assert exported.shape == (3, 2, SIZE, SIZE) and float(np.abs(exported - reference).max()) == pytest.approx(error)
    assert segmenter.predict_processed(images[:1]).shape == (1, 2, SIZE, SIZE)  # dynamic batch


@pytest.mark.parametrize("existing", [None, b"the previous model"], ids=["no-model", "previous-model"])
def test_parity_failure_raises_and_writes_nothing(tmp_path: Path, existing: bytes | None):
    path = tmp_path / "models" / "model.onnx"
    if existing is not None:
        path.parent.mkdir()
        path.write_bytes(existing)
    with pytest.raises(ParityError, match=r"model.onnx: ONNX Runtime and PyTorch disagree by \d\.\d\de-?\+?\d+ "
                                          r"\(> export.parity_atol 0.001\); model not written"):
        export_checked(BranchOnInput(), CONTRACT, 18, frames(), 1e-3, path)
    assert not partial_name(path).exists()
    if existing is None:
        assert list(path.parent.iterdir()) == []
    else:
        assert path.read_bytes() == existing and sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]


def test_the_check_passes_the_same_module_where_it_was_traced_right(tmp_path: Path):
    # With mean 0 and std 1, all-zero frames reach the network as zeros, the input the exporter traced:
    # both take the same branch, so the failure above is the real disagreement, not the check itself.
    path = tmp_path / "model.onnx"
    zeros = np.zeros((2, SIZE, SIZE), np.uint8)
    assert export_checked(BranchOnInput(), tiny_contract(SPEC), 18, zeros, 1e-3, path) <= 1e-6
    with pytest.raises(ParityError):
        export_checked(BranchOnInput(), tiny_contract(SPEC), 18, frames(), 1e-3, tmp_path / "other.onnx")
