"""The INT8 model: the float tail, quantisation, the accuracy gate and the export stage's INT8 step.

The models are built with onnx.helper (tests/tiny_models.py): one that quantises well and one
whose first layer's activation range is stretched by an outlier channel, so that 8 bits lose
the signal (it must fail the gate, cleanly).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import helper

from pipeline.config import ParamsError, build, Params
from pipeline.evaluation.int8_gate import GateFrame, GateResult, metric_drops, pooled_dice, run_gate
from pipeline.imaging.masks import pack_masks
from pipeline.imaging.png import write_png_atomically
from pipeline.imaging.preprocessing import preprocess_frame
from pipeline.inference.contract import NO_POSTPROCESS, ModelContract
from pipeline.inference.predictor import Segmenter
from pipeline.inference.runtime import file_sha256
from pipeline.layout import FRAMES_DIR, IMAGES, MASKS, PROCESSED_DIR
from pipeline.training.int8_export import describe, export_int8
from pipeline.training.quantize import evenly_spaced, float_tail, name_nodes, quantize_int8
from tests.tiny_models import TINY_SPEC, tiny_contract, write_two_layer_model

CLASSES = ("gland", "lesion")


def frame(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 32x32 grey frame of smooth blobs, and its (2, 32, 32) truth: bright (> 127.5) and dark pixels."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((4, 4)).astype(np.float32)
    import cv2

    gray = (cv2.resize(coarse, (32, 32), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)
    bright = gray.astype(np.float32) / 255 > 0.5
    return gray, np.stack([bright, ~bright])


def gate_frames(count: int) -> list[GateFrame]:
    frames = []
    for index in range(count):
        gray, truth = frame(index)
        processed = preprocess_frame(gray, TINY_SPEC)
        frames.append(GateFrame(f"f{index}", f"P{index // 2}", processed.image, processed.geometry, truth))
    return frames


# --- the float tail ---------------------------------------------------------------------------------------------

def graph_of(ops: list[tuple[str, list[str], list[str]]], outputs: list[str]) -> onnx.GraphProto:
    nodes = [helper.make_node(op, inputs, outs, name=f"n{index}_{op}") for index, (op, inputs, outs) in enumerate(ops)]
    return helper.make_graph(nodes, "g", [], [helper.make_empty_tensor_value_info(name) for name in outputs])


@pytest.mark.parametrize("ops, outputs, kept", [
    # FPN's head: the logits convolution, a 4x resize, the sigmoid
    ([("Conv", ["x"], ["a"]), ("Conv", ["a"], ["logits"]), ("Resize", ["logits"], ["up"]),
      ("Sigmoid", ["up"], ["p"])], ["p"], ["n1_Conv", "n2_Resize", "n3_Sigmoid"]),
    # U-Net: the logits convolution straight into the sigmoid
    ([("Conv", ["x"], ["a"]), ("Relu", ["a"], ["b"]), ("Conv", ["b"], ["logits"]), ("Sigmoid", ["logits"], ["p"])],
     ["p"], ["n2_Conv", "n3_Sigmoid"]),
    # a plane output: Gemm -> Softmax, besides the masks
    ([("Conv", ["x"], ["logits"]), ("Sigmoid", ["logits"], ["p"]), ("GlobalAveragePool", ["x"], ["m"]),
      ("Flatten", ["m"], ["f"]), ("Gemm", ["f"], ["pl"]), ("Softmax", ["pl"], ["plane"])],
     ["p", "plane"], ["n0_Conv", "n1_Sigmoid", "n4_Gemm", "n5_Softmax"]),
    # no compute layer before the output: the walk stops at the graph input
    ([("Sigmoid", ["x"], ["p"])], ["p"], ["n0_Sigmoid"]),
])
def test_float_tail_keeps_the_sigmoid_the_resize_and_the_logits_layer(ops, outputs, kept):
    assert float_tail(graph_of(ops, outputs)) == kept


def test_name_nodes_names_only_unnamed_nodes_uniquely():
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["a"]),
                                                 helper.make_node("Relu", ["a"], ["b"], name="Relu_1"),
                                                 helper.make_node("Relu", ["b"], ["c"])], "g", [], []))
    assert [node.name for node in name_nodes(model).graph.node] == ["Relu_0", "Relu_1", "Relu_2"]


@pytest.mark.parametrize("items, count, expected", [
    (list("abcdefghij"), 3, ["a", "e", "j"]),  # positions 0, 4.5 -> 4, 9
    (list("abc"), 5, ["a", "b", "c"]),
    (list("abcd"), 1, ["a"]),
])
def test_calibration_frames_are_spread_over_the_training_frames(items, count, expected):
    assert evenly_spaced(items, count) == expected


# --- quantisation and the gate -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Per kind ("good", "sensitive"): the float model and its INT8 model (MinMax on 8 other frames)."""
    folder = tmp_path_factory.mktemp("int8")
    calibration = np.stack([frame(100 + index)[0] for index in range(8)]).astype(np.float32)[:, None] / 255
    made = {}
    for kind, outlier in (("good", 0.0), ("sensitive", 1000.0)):
        float_model = write_two_layer_model(folder / f"{kind}.onnx", outlier_gain=outlier)
        quantize_int8(float_model, folder / f"{kind}.int8.onnx", calibration, "minmax")
        made[kind] = (float_model, folder / f"{kind}.int8.onnx")
    return made


def test_the_quantised_model_is_qdq_with_its_logits_layer_and_sigmoid_in_float(models):
    graph = onnx.load(str(models["good"][1])).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") >= 1 and ops.count("DequantizeLinear") >= 2
    weights = {init.name: init for init in graph.initializer}
    assert any(init.data_type == onnx.TensorProto.INT8 and len(init.dims) == 4 for init in weights.values())
    by_name = {node.name: node for node in graph.node}
    assert by_name["layer2"].op_type == "Conv" and by_name["sigmoid"].op_type == "Sigmoid"
    # layer2 reads float weights: no DequantizeLinear feeds its weight input
    assert by_name["layer2"].input[1] in weights and weights[by_name["layer2"].input[1]].data_type == onnx.TensorProto.FLOAT


@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy"])
def test_every_calibration_method_gives_a_model_that_runs(tmp_path, models, method):
    calibration = np.stack([frame(200 + index)[0] for index in range(4)]).astype(np.float32)[:, None] / 255
    out = tmp_path / "m.int8.onnx"
    assert quantize_int8(models["good"][0], out, calibration, method) == ["layer2", "sigmoid"]
    gate = run_gate(Segmenter(models["good"][0]), Segmenter(out), gate_frames(4), 0.5, NO_POSTPROCESS, 0.99, 0.01)
    assert gate.passed, gate.failures


def write_saturating_model(path: Path) -> Path:
    """A model whose quantised layer hits the 8-bit maxima: a 3 x 3 convolution into 4 channels of weights all 1
    (scaled to the largest integer weight) on an all-white frame (activation 255), then a float 1 x 1 layer
    averaging the 4 channels. The true output inside the frame is 9; pairs of products sum to 2 x 255 x 127
    with 8-bit weights. (With one output channel ONNX Runtime takes another kernel, which does not saturate.)"""
    from onnx import TensorProto, numpy_helper

    nodes = [helper.make_node("Conv", ["image", "w1"], ["features"], pads=[1, 1, 1, 1], name="layer1"),
             helper.make_node("Conv", ["features", "w2"], ["logits"], name="layer2")]
    graph = helper.make_graph(nodes, "saturating", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                                  [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w1"),
                               numpy_helper.from_array(np.full((1, 4, 1, 1), 0.25, np.float32), "w2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("bits", [7, 8])
def test_7_bit_weights_give_exact_sums_on_this_cpu_and_8_bit_ones_only_with_vnni(tmp_path, bits):
    """The premise of export.int8.weight_bits and of the runtime's choice, checked on the CPU running the test:
    ONNX Runtime's fused integer convolution (all optimisations, as the product runs it) against the true 9."""
    import onnxruntime as ort

    from pipeline.inference.runtime import cpu_flags, int8_exact, int8_kernels

    white = np.ones((1, 1, 8, 8), np.float32)
    out = tmp_path / f"saturating.{bits}.onnx"
    quantize_int8(write_saturating_model(tmp_path / "saturating.onnx"), out, white, "minmax", weight_bits=bits)
    weights = {init.name: onnx.numpy_helper.to_array(init) for init in onnx.load(str(out)).graph.initializer}
    assert int(np.abs(weights["w1_quantized"]).max()) == {7: 64, 8: 127}[bits]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    centre = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"]).run(
        None, {"image": white})[0][0, 0, 4, 4]
    kernels = int8_kernels(cpu_flags())
    if int8_exact(kernels, bits):
        assert centre == pytest.approx(9.0, abs=0.05), kernels
    else:  # AVX2 without VNNI: a pair's 2 x 255 x 127 = 64770 saturates at 32767 in 16 bits
        assert centre < 6.0, (kernels, centre)


def test_quantize_refuses_an_unknown_method_and_empty_calibration(tmp_path, models):
    with pytest.raises(ValueError, match="export.int8.calibration must be one of"):
        quantize_int8(models["good"][0], tmp_path / "x.onnx", np.zeros((1, 1, 32, 32), np.float32), "kl")
    with pytest.raises(ValueError, match=r"calibration inputs must be \(N >= 1"):
        quantize_int8(models["good"][0], tmp_path / "x.onnx", np.zeros((0, 1, 32, 32), np.float32), "minmax")
    with pytest.raises(ValueError, match="export.int8.weight_bits must be 7 or 8, got 4"):
        quantize_int8(models["good"][0], tmp_path / "x.onnx", np.ones((1, 1, 32, 32), np.float32), "minmax", 4)
    assert not (tmp_path / "x.onnx").exists()


def test_the_gate_passes_a_model_that_quantises_well(models):
    result = run_gate(Segmenter(models["good"][0]), Segmenter(models["good"][1]), gate_frames(6), 0.5,
                      NO_POSTPROCESS, 0.99, 0.01)
    assert result.passed and result.failures == []
    assert result.frames == 6
    assert all(value >= 0.99 for value in result.mask_dice.values())
    assert set(result.metric_drop) == {"gland.dice", "gland.iou", "lesion.dice", "lesion.iou"}
    assert all(abs(value) <= 0.01 for value in result.metric_drop.values())


def test_the_gate_fails_a_sensitive_model_naming_the_class_and_figure(models):
    result = run_gate(Segmenter(models["sensitive"][0]), Segmenter(models["sensitive"][1]), gate_frames(6), 0.5,
                      NO_POSTPROCESS, 0.99, 0.01)
    assert not result.passed
    assert result.mask_dice["gland"] < 0.5
    assert any(line.startswith("gland: INT8 and fp32 masks agree with Dice") and line.endswith("< 0.99")
               for line in result.failures)
    assert any(line.startswith("gland.dice: INT8 scores") for line in result.failures)


@pytest.mark.parametrize("reference, candidate, expected", [
    ([np.ones((2, 2), bool)], [np.ones((2, 2), bool)], 1.0),
    ([np.zeros((2, 2), bool)], [np.zeros((2, 2), bool)], 1.0),  # both empty everywhere
    ([np.eye(2, dtype=bool), np.ones((2, 2), bool)], [np.zeros((2, 2), bool), np.ones((2, 2), bool)], 8 / 10),
])
def test_pooled_dice(reference, candidate, expected):
    assert pooled_dice(reference, candidate) == pytest.approx(expected)


def test_metric_drops_compare_only_what_both_define():
    reference = {"gland": {"dice": 0.95, "iou": 0.9, "hd95_px": 3.0}, "lesion": {"dice": None, "iou": 0.5}}
    candidate = {"gland": {"dice": 0.94, "iou": 0.91, "hd95_px": 9.0}, "lesion": {"dice": 0.2, "iou": float("nan")}}
    assert metric_drops(reference, candidate) == pytest.approx({"gland.dice": 0.01, "gland.iou": -0.01})


def test_gate_result_limits_are_inclusive_and_reported():
    result = GateResult({"gland": 0.99}, {"gland.dice": 0.01}, 3, 0.99, 0.01)
    assert result.passed
    assert result.to_dict() == {"passed": True, "frames": 3, "min_mask_dice": 0.99, "max_metric_drop": 0.01,
                                "failures": [], "mask_dice": {"gland": 0.99}, "metric_drop": {"gland.dice": 0.01}}


@pytest.mark.parametrize("values, message", [
    ({"calibration": "kl"}, "int8.calibration must be one of minmax, percentile, entropy"),
    ({"calibration_frames": 0}, "int8.calibration_frames must be an integer >= 1"),
    ({"min_mask_dice": 1.5}, "int8.min_mask_dice must be a number in"),
    ({"max_metric_drop": -0.1}, "int8.max_metric_drop must be a number in"),
    ({"enabled": "yes"}, "int8.enabled must be true or false"),
    ({"weight_bits": 6}, "int8.weight_bits must be 7 or 8, got 6"),
    ({"weight_bits": True}, "int8.weight_bits must be 7 or 8, got True"),
])
def test_int8_params_are_checked(values, message):
    with pytest.raises(ParamsError, match=message):
        build(Params, {"export": {"int8": values}}, "params")


# --- the export stage's step -------------------------------------------------------------------------------------

def lay_out_frames(root: Path, ids: list[str]) -> pd.DataFrame:
    """Writes the pull and preprocess stages' images and masks for ``ids`` under ``root``; returns the manifest."""
    rows = []
    for index, frame_id in enumerate(ids):
        gray, truth = frame(index)
        processed = preprocess_frame(gray, TINY_SPEC)
        write_png_atomically(root / PROCESSED_DIR / IMAGES / f"{frame_id}.png", processed.image)
        write_png_atomically(root / FRAMES_DIR / MASKS / f"{frame_id}.png", pack_masks(truth))
        rows.append({"frame_id": frame_id, "patient": f"P{index}", **processed.geometry.to_dict()})
    return pd.DataFrame(rows).set_index("frame_id")


def int8_params(**int8) -> Params:
    params = build(Params, {"data": {"classes": list(CLASSES)}, "model": {"mean": 0.0, "std": 1.0},
                            "export": {"int8": {"calibration_frames": 4, **int8}}}, "params")
    return replace(params, inference=replace(params.inference, postprocess=NO_POSTPROCESS))


@pytest.mark.parametrize("outlier, written", [(0.0, True), (1000.0, False)])
def test_export_int8_writes_the_model_only_when_the_gate_passes(tmp_path, monkeypatch, outlier, written):
    monkeypatch.chdir(tmp_path)
    train, test = [f"t{i}" for i in range(6)], [f"x{i}" for i in range(4)]
    table = lay_out_frames(tmp_path, train + test)
    float_model = write_two_layer_model(tmp_path / "model.onnx", outlier_gain=outlier)
    out = tmp_path / "int8" / "model.int8.onnx"
    out.parent.mkdir()
    out.write_bytes(b"an INT8 model of an earlier float model")  # never left behind
    report = export_int8(float_model, out, tiny_contract(), int8_params(), train, test, table)
    assert report["written"] is written and report["gate"]["passed"] is written
    assert report["calibration"] == "percentile" and report["calibration_frames"] == 4 and report["float_nodes"] == 2
    assert out.is_file() is written
    assert list(out.parent.iterdir()) == ([out] if written else [])
    lines = describe(report, out)
    if written:
        contract = Segmenter(out).contract
        assert contract.precision == "int8"
        assert contract.quantization["source_sha256"] == file_sha256(float_model)
        assert contract.quantization["gate"] == report["gate"]
        assert contract.quantization["float_nodes"] == ["layer2", "sigmoid"]
        assert contract.quantization["weight_bits"] == report["weight_bits"] == 7
        assert lines[0].startswith(f"int8: {out} (7-bit weights, percentile calibration on 4 training frames); gate passed")
    else:
        assert lines[0].startswith("int8: gate failed, no INT8 model written")
        assert any(line.startswith("int8: gland: INT8 and fp32 masks agree with Dice") for line in lines[1:])
    json.dumps(report)  # reports/int8.json


@pytest.mark.parametrize("kernels, written", [("avx2", False), ("dot-product", True)])
def test_export_int8_makes_no_8_bit_model_where_the_cpu_would_saturate_it(tmp_path, monkeypatch, kernels, written):
    """8-bit weights on an AVX2 CPU without VNNI: no model and a one-line reason, the stage going on; with VNNI
    (said here; this tiny model's 1 x 1 first layer has no pairs of products to saturate on any CPU) it is made."""
    monkeypatch.chdir(tmp_path)
    train, test = [f"t{i}" for i in range(6)], [f"x{i}" for i in range(4)]
    table = lay_out_frames(tmp_path, train + test)
    float_model = write_two_layer_model(tmp_path / "model.onnx")
    out = tmp_path / "int8" / "model.int8.onnx"
    report = export_int8(float_model, out, tiny_contract(), int8_params(weight_bits=8), train, test, table,
                         kernels=kernels)
    assert report["written"] is written and out.is_file() is written and report["weight_bits"] == 8
    if written:
        assert Segmenter(out, kernels=kernels).contract.quantization["weight_bits"] == 8
    else:
        assert "gate" not in report and list(out.parent.iterdir()) == []
        lines = describe(report, out)
        assert lines == [f"int8: not written ({report['reason']})"] and "\n" not in lines[0]
        assert report["reason"].startswith("export.int8.weight_bits: 8 on a CPU without VNNI, whose AVX2 kernels")
        assert report["reason"].endswith("use weight_bits: 7, or export on a CPU with VNNI")


def test_export_int8_off_removes_an_earlier_int8_model(tmp_path):
    out = tmp_path / "int8" / "model.int8.onnx"
    out.parent.mkdir()
    out.write_bytes(b"old")
    report = export_int8(tmp_path / "model.onnx", out, tiny_contract(), int8_params(enabled=False), ["a"], ["b"],
                         pd.DataFrame())
    assert report == {"enabled": False, "written": False} and not out.exists() and out.parent.is_dir()
    assert describe(report, out) == ["int8: off (export.int8.enabled: false)"]


def test_contract_quantization_round_trips_and_is_checked():
    contract = replace(tiny_contract(), quantization={"source_sha256": "ab" * 32, "calibration": "minmax"})
    again = ModelContract.from_json(contract.to_json())
    assert again.quantization == contract.quantization and again.precision == "int8"
    assert ModelContract.from_json(tiny_contract().to_json()).precision == "fp32"
    payload = json.loads(contract.to_json())
    payload["quantization"] = {"calibration": "minmax"}
    with pytest.raises(ValueError, match="quantization must be null or a record with source_sha256"):
        ModelContract.from_json(json.dumps(payload))
