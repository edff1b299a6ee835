"""Static INT8 quantisation of an exported model with ONNX Runtime (QDQ format).

The float model goes through ``quant_pre_process`` (shape inference and graph clean-up), then
``quantize_static``: weights signed per output channel (7 or 8 bits), activations unsigned 8-bit
per tensor (ONNX Runtime's U8S8), ranges calibrated on given frames. With 7-bit weights
(``reduce_range``) the model computes the same sums on every x86 CPU: without VNNI, ONNX
Runtime's AVX2 kernels add pairs of u8 x s8 products in 16 bits (``vpmaddubsw``), which
255 x 127 x 2 overflows and 255 x 64 x 2 does not. The model's tail stays in float: the sigmoid (and the plane's
softmax), any resize before it, and the layer that produces the logits, so the probabilities
near the threshold are not rounded to 8-bit steps (:func:`float_tail`).

The contract travels with the model: the caller writes it (with its ``quantization``
record) into the quantised file's metadata.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx

from pipeline.inference.contract import INPUT_NAME
from pipeline.int8_spec import CALIBRATION_METHODS, WEIGHT_BITS

LOG = logging.getLogger(__name__)

TAIL_OPS = frozenset({"Sigmoid", "Softmax", "Resize", "Upsample", "Identity", "Cast", "Reshape", "Flatten",
                      "Transpose", "Squeeze", "Unsqueeze", "Concat"})
"""Ops walked through from an output back to the layer that computes the logits."""
LOGIT_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
"""Ops that compute the logits: the last of them before an output stays in float."""
PERCENTILE = 99.999


class QuantizationError(RuntimeError):
    """ONNX Runtime could not quantise the model (the message says why)."""


def float_tail(graph: onnx.GraphProto) -> list[str]:
    """Names of the nodes kept in float: from each graph output back through :data:`TAIL_OPS`, up to and
    including the first :data:`LOGIT_OPS` node on each path.

    Args:
        graph: a graph whose nodes all have names (:func:`name_nodes`).

    Returns:
        Node names, in graph order.
    """
    producer = {output: node for node in graph.node for output in node.output}
    keep: set[str] = set()
    pending = [output.name for output in graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in keep:
            continue
        if node.op_type in LOGIT_OPS:
            keep.add(node.name)
        elif node.op_type in TAIL_OPS:
            keep.add(node.name)
            pending.extend(name for name in node.input if name)
    return [node.name for node in graph.node if node.name in keep]


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Gives every unnamed node a unique name (``<op>_<index>``), in place; returns the model."""
    taken = {node.name for node in model.graph.node if node.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
    return model


def calibration_batches(inputs: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
    """One network input per frame: ``{image: (1, 1, S, S) float32}``, from (N, 1, S, S) normalised inputs."""
    for index in range(len(inputs)):
        yield {INPUT_NAME: np.ascontiguousarray(inputs[index:index + 1], dtype=np.float32)}


def evenly_spaced(items: Sequence[str], count: int) -> list[str]:
    """``count`` items spread evenly over ``items`` (all of them when there are fewer), in their order."""
    if count >= len(items):
        return list(items)
    positions = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[position] for position in dict.fromkeys(positions.tolist())]


def quantize_int8(float_model: Path, out: Path, calibration_inputs: np.ndarray, method: str,
                  weight_bits: int = 7) -> list[str]:
    """Writes the static INT8 (QDQ) version of ``float_model`` to ``out``.

    Args:
        float_model: an ONNX model with one input ``image`` (N, 1, S, S) float32.
        out: the quantised model's path (written directly: the caller stages it).
        calibration_inputs: (N, 1, S, S) float32 normalised network inputs, N >= 1
            (training frames, never test frames).
        method: one of :data:`CALIBRATION_METHODS`.
        weight_bits: 7 (exact on every x86 CPU with AVX2) or 8 (exact only with VNNI), see
            :data:`pipeline.int8_spec.WEIGHT_BITS`.

    Returns:
        The names of the nodes kept in float (:func:`float_tail`).

    Raises:
        ValueError: unknown method or no calibration frame.
        QuantizationError: ONNX Runtime failed.
    """
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quant_pre_process, quantize_static)

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"export.int8.calibration must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    if weight_bits not in WEIGHT_BITS:
        raise ValueError(f"export.int8.weight_bits must be 7 or 8, got {weight_bits!r}")
    if calibration_inputs.ndim != 4 or len(calibration_inputs) == 0:
        raise ValueError(f"calibration inputs must be (N >= 1, 1, S, S), got {calibration_inputs.shape}")

    class Reader(CalibrationDataReader):
        """The frames one at a time; ONNX Runtime reads them in ranges of one (``CalibStridedMinMax``), so
        a histogram calibration holds one frame's activations at once, not all of them."""

        def __init__(self) -> None:
            self.set_range(0, len(calibration_inputs))

        def __len__(self) -> int:
            return len(calibration_inputs)

        def set_range(self, start_index: int, end_index: int) -> None:
            self.batches = calibration_batches(calibration_inputs[start_index:end_index])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
                 "entropy": CalibrationMethod.Entropy}[method]
    options: dict[str, object] = {"CalibStridedMinMax": 1}  # any method: collect, merge, drop, one frame at a time
    if method == "percentile":
        options["CalibPercentile"] = PERCENTILE
    with tempfile.TemporaryDirectory(prefix="trus-int8-") as work:
        prepared = Path(work) / "prepared.onnx"
        try:
            quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
            model = name_nodes(onnx.load(str(prepared)))
            onnx.save(model, str(prepared))
            kept = float_tail(model.graph)
            quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=calibrate, nodes_to_exclude=kept, extra_options=options,
                            reduce_range=weight_bits == 7,
                            calibration_providers=["CPUExecutionProvider"])
        except (ValueError, RuntimeError, onnx.checker.ValidationError) as error:
            raise QuantizationError(f"{float_model}: ONNX Runtime could not quantise the model "
                                    f"({str(error).splitlines()[0] if str(error) else type(error).__name__})") from error
    LOG.info("quantised %s -> %s (%d-bit weights, %s calibration on %d frames; %d nodes kept in float)", float_model,
             out, weight_bits, method, len(calibration_inputs), len(kept))
    return kept
