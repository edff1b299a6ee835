"""Tiny ONNX models with a real contract, built with onnx.helper (no torch), for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.contract import CONTRACT_KEY, INPUT_NAME, OUTPUT_NAME, PLANE_OUTPUT_NAME, ModelContract
from pipeline.planes import PLANES

TINY_SPEC = PreprocessSpec(crop="none", size=32, resize="letterbox", interpolation="area",
                           filter=FilterSpec(method="none"))


def tiny_contract(spec: PreprocessSpec = TINY_SPEC, classes: tuple[str, ...] = ("gland", "lesion"),
                  plane_classes: tuple[str, ...] | None = None) -> ModelContract:
    """A contract with identity normalisation (mean 0, std 1), so inputs are gray / 255."""
    return ModelContract(classes=classes, preprocess=spec, mean=0.0, std=1.0, threshold=0.5,
                         arch="tiny-threshold", encoder="none",
                         metrics={"gland": {"dice": 0.5}}, dataset_version="test", code_version="test",
                         note="test model", plane_classes=plane_classes)


def save_model(graph: onnx.GraphProto, path: Path, contract: ModelContract | None) -> Path:
    """Checks ``graph`` as an opset-18 model, stores ``contract`` in its metadata (None: no contract), saves it."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if contract is not None:
        helper.set_model_props(model, {CONTRACT_KEY: contract.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def write_threshold_model(path: Path, contract: ModelContract | None = None, level: float = 0.5,
                          gain: float = 40.0, with_contract: bool = True, plane: bool = False) -> Path:
    """Writes an ONNX model whose channel 0 is 'brighter than level', channel 1 'darker than level'.

    Output: (N, 2, S, S) = sigmoid(gain * (x - level)), sigmoid(-gain * (x - level)) for
    input x = gray / 255 (the tiny contract's normalisation). So on a frame with a
    bright square on black, channel 0 is the square and channel 1 the background.

    With ``plane``, a second output ``plane`` (N, 2) = softmax(gain * (m - level) * [1, -1])
    for the frame's mean m of x: a frame brighter than ``level`` on average is transverse,
    a darker one sagittal; the contract (``tiny_contract(plane_classes=PLANES)`` by default)
    names the plane classes.
    """
    contract = contract or tiny_contract(plane_classes=PLANES if plane else None)
    weight = numpy_helper.from_array(np.array([gain, -gain], np.float32).reshape(2, 1, 1, 1), "w")
    bias = numpy_helper.from_array(np.array([-gain * level, gain * level], np.float32), "b")
    nodes = [helper.make_node("Conv", [INPUT_NAME, "w", "b"], ["logits"]),
             helper.make_node("Sigmoid", ["logits"], [OUTPUT_NAME])]
    outputs = [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 2, contract.size, contract.size])]
    initialisers = [weight, bias]
    if plane:
        initialisers += [numpy_helper.from_array(np.array([[gain, -gain]], np.float32), "plane_w"),
                         numpy_helper.from_array(np.array([-gain * level, gain * level], np.float32), "plane_b")]
        nodes += [helper.make_node("GlobalAveragePool", [INPUT_NAME], ["mean"]),
                  helper.make_node("Flatten", ["mean"], ["mean_flat"]),
                  helper.make_node("Gemm", ["mean_flat", "plane_w", "plane_b"], ["plane_logits"]),
                  helper.make_node("Softmax", ["plane_logits"], [PLANE_OUTPUT_NAME], axis=1)]
        outputs.append(helper.make_tensor_value_info(PLANE_OUTPUT_NAME, TensorProto.FLOAT, ["N", 2]))
    graph = helper.make_graph(
        nodes, "tiny_threshold",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 1, contract.size, contract.size])],
        outputs, initialisers,
    )
    return save_model(graph, path, contract if with_contract else None)


def write_ramp_model(path: Path, contract: ModelContract) -> Path:
    """Writes an ONNX model that is not mirror-symmetric: its output depends on where a pixel is.

    Output ``probabilities`` (N, 2, S, S): channel 0 = x * column / (S - 1), channel 1 =
    x * row / (S - 1), for input x = gray / 255 (the tiny contract's normalisation); on a white
    frame, a left-to-right ramp and a top-to-bottom ramp. Output ``plane`` (N, 2) =
    softmax([4 m, 0]) for m, the frame's mean of channel 0: it changes when the frame is
    mirrored left-right. The contract should name the plane classes.
    """
    size = contract.size
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    ramps = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size))])[None]  # (1, 2, S, S)
    initialisers = [numpy_helper.from_array(ramps, "ramps"),
                    numpy_helper.from_array(np.array([[4.0, 0.0], [0.0, 0.0]], np.float32), "plane_w")]
    nodes = [helper.make_node("Mul", [INPUT_NAME, "ramps"], [OUTPUT_NAME]),
             helper.make_node("GlobalAveragePool", [OUTPUT_NAME], ["means"]),
             helper.make_node("Flatten", ["means"], ["means_flat"]),
             helper.make_node("MatMul", ["means_flat", "plane_w"], ["plane_logits"]),
             helper.make_node("Softmax", ["plane_logits"], [PLANE_OUTPUT_NAME], axis=1)]
    graph = helper.make_graph(
        nodes, "tiny_ramp",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 1, size, size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 2, size, size]),
         helper.make_tensor_value_info(PLANE_OUTPUT_NAME, TensorProto.FLOAT, ["N", 2])], initialisers)
    return save_model(graph, path, contract)


def write_two_layer_model(path: Path, outlier_gain: float = 0.0, gain: float = 12.0,
                          contract: ModelContract | None = None) -> Path:
    """Writes a two-convolution model that INT8 quantisation keeps (``outlier_gain`` 0) or breaks (large).

    Layer 1 (quantised by :func:`pipeline.training.quantize.quantize_int8`) maps x = gray / 255 to
    three channels: x, 1 - x and ``outlier_gain * x``. Layer 2 (the logits, kept in float) gives
    channel 0 = sigmoid(gain * (x - 0.5)) ("bright") and channel 1 = sigmoid(gain * ((1 - x) - 0.5))
    ("dark"), ignoring the third channel. With a large ``outlier_gain`` the third channel
    stretches layer 1's per-tensor activation range, so x and 1 - x lose their 8-bit
    precision and the masks change: a model that fails the INT8 gate.
    """
    contract = contract or tiny_contract()
    first = numpy_helper.from_array(np.array([1.0, -1.0, outlier_gain], np.float32).reshape(3, 1, 1, 1), "w1")
    first_bias = numpy_helper.from_array(np.array([0.0, 1.0, 0.0], np.float32), "b1")
    second = numpy_helper.from_array(np.array([[gain, 0, 0], [0, gain, 0]], np.float32).reshape(2, 3, 1, 1), "w2")
    second_bias = numpy_helper.from_array(np.array([-gain / 2, -gain / 2], np.float32), "b2")
    nodes = [helper.make_node("Conv", [INPUT_NAME, "w1", "b1"], ["features"], name="layer1"),
             helper.make_node("Relu", ["features"], ["activated"], name="relu1"),
             helper.make_node("Conv", ["activated", "w2", "b2"], ["logits"], name="layer2"),
             helper.make_node("Sigmoid", ["logits"], [OUTPUT_NAME], name="sigmoid")]
    graph = helper.make_graph(
        nodes, "two_layer",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 1, contract.size, contract.size])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 2, contract.size, contract.size])],
        [first, first_bias, second, second_bias])
    return save_model(graph, path, contract)
