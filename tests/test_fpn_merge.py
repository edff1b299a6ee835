"""FPN's merge exported as a chain of additions (pipeline/training/onnx_export.py, SumMerge): the same
network, bit for bit, and an ONNX graph whose INT8 version adds the pyramid's levels in 8 bits.

Tiny on purpose: FPN / ResNet-18 from scratch at 64 px, 2 calibration frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import segmentation_models_pytorch as smp
import torch
from segmentation_models_pytorch.decoders.fpn.decoder import MergeBlock

from pipeline.config import ModelParams
from pipeline.training.model import build_model
from pipeline.training.onnx_export import SumMerge, chained_fpn_merges, export_onnx
from pipeline.training.quantize import quantize_int8
from tests.tiny_models import TINY_SPEC, tiny_contract

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")

SIZE = 64
FPN = ModelParams(arch="FPN", encoder="resnet18", encoder_weights=None)


def smp_fpn(merge_policy: str = "add") -> torch.nn.Module:
    """smp's own FPN, its merge untouched."""
    torch.manual_seed(0)
    return smp.create_model("FPN", encoder_name="resnet18", encoder_weights=None, in_channels=1, classes=2,
                            decoder_merge_policy=merge_policy).eval()


def op_counts(model: onnx.ModelProto) -> Counter:
    return Counter(node.op_type for node in model.graph.node)


@pytest.mark.parametrize("policy, replaced", [("add", True), ("cat", False)])
def test_only_the_add_merge_is_chained_and_only_within_the_block(policy, replaced):
    network = smp_fpn(policy)
    original = network.decoder.merge
    with chained_fpn_merges(network) as chained:
        assert chained is network
        assert isinstance(network.decoder.merge, SumMerge) is replaced
    assert network.decoder.merge is original


def test_the_chained_merge_gives_smps_output_bit_for_bit():
    network = smp_fpn()
    images = torch.randn(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = network(images)
        with chained_fpn_merges(network):
            assert torch.equal(network(images), reference)
        parts = [torch.randn(2, 8, 4, 4) * scale for scale in (1.0, 10.0, 1e3, 1e-3)]
        assert torch.equal(SumMerge()(parts), torch.stack(parts).sum(dim=0))


def test_the_int8_model_adds_the_pyramid_levels_in_8_bits(tmp_path: Path):
    float_path, int8_path = tmp_path / "model.onnx", tmp_path / "model.int8.onnx"
    network = build_model(FPN, 2).eval()
    export_onnx(network, SIZE, 18, float_path, tiny_contract(replace(TINY_SPEC, size=SIZE)))
    assert isinstance(network.decoder.merge, MergeBlock)  # the caller's network is left as it was
    exported = onnx.load(str(float_path))
    assert op_counts(exported)["ReduceSum"] == 0
    merge_adds = [node for node in exported.graph.node if node.op_type == "Add" and "/merge/" in node.name]
    assert len(merge_adds) == 3  # four pyramid levels

    calibration = np.random.default_rng(2).normal(size=(2, 1, SIZE, SIZE)).astype(np.float32)
    quantize_int8(float_path, int8_path, calibration, "minmax")
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"])
    optimised = onnx.load(str(tmp_path / "optimised.onnx"))
    merge_ops = Counter(node.op_type for node in optimised.graph.node if "/merge/" in node.name)
    assert merge_ops["QLinearAdd"] == 3, merge_ops
    assert {"ReduceSum", "Concat", "QLinearConcat", "Add"}.isdisjoint(merge_ops), merge_ops
