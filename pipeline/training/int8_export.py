"""The export stage's INT8 step: quantise the exported model, gate it on the test frames, keep it only if it passes.

Calibration uses training frames only (``export.int8.calibration_frames`` of them, spread
evenly over the training subset); the gate (:mod:`pipeline.evaluation.int8_gate`) uses the test
frames. The INT8 file is written under a temporary name and becomes ``models/int8/model.int8.onnx``
only when the gate passes; otherwise the folder stays empty, the stage still succeeds with the
float model, and one line per failed figure says which class failed by how much. The folder
is a DVC output because DVC cannot declare a file that may not exist. Its contract is the float
model's plus a ``quantization`` record (method, frames, the float tail, the float model's
SHA-256 and the gate's figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from pipeline.config import Params
from pipeline.evaluation.int8_gate import GateFrame, GateResult, run_gate
from pipeline.files.atomic import atomic_file
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import FrameGeometry
from pipeline.imaging.masks import read_bitmask, unpack_masks
from pipeline.imaging.preprocessing import network_input
from pipeline.inference.contract import CONTRACT_KEY, ModelContract
from pipeline.inference.predictor import Segmenter
from pipeline.inference.runtime import cpu_flags, file_sha256, int8_exact, int8_kernels
from pipeline.layout import FRAMES_DIR, IMAGES, MASKS, PROCESSED_DIR
from pipeline.training.quantize import evenly_spaced, quantize_int8


def quantization_format(weight_bits: int) -> dict[str, Any]:
    """The contract's description of the quantised model's number formats; ``weight_bits`` is what the
    runtime reads (:func:`pipeline.inference.runtime.int8_exact`)."""
    return {"format": "QDQ", "weights": f"int8 holding {weight_bits}-bit values, symmetric, per output channel",
            "weight_bits": weight_bits, "activations": "uint8, asymmetric, per tensor"}


class GateFailed(ValueError):
    """The INT8 model failed its gate (carries the result)."""

    def __init__(self, result: GateResult) -> None:
        super().__init__("; ".join(result.failures))
        self.result = result


def gate_frames(frame_ids: Sequence[str], table: pd.DataFrame, n_classes: int) -> list[GateFrame]:
    """The test frames as the gate needs them: processed image, geometry, truth masks and plane.

    Args:
        frame_ids: the test frames.
        table: the processed manifest indexed by ``frame_id``.
        n_classes: C, the number of classes in the masks.
    """
    frames = []
    for frame_id in frame_ids:
        row = table.loc[frame_id]
        plane = row.get("plane")
        frames.append(GateFrame(
            frame_id, str(row["patient"]), read_frame(PROCESSED_DIR / IMAGES / f"{frame_id}.png").gray,
            FrameGeometry.from_dict(row.to_dict()),
            unpack_masks(read_bitmask(FRAMES_DIR / MASKS / f"{frame_id}.png"), n_classes),
            plane if isinstance(plane, str) and plane else None))
    return frames


def calibration_inputs(frame_ids: Sequence[str], mean: float, std: float) -> np.ndarray:
    """(N, 1, S, S) float32 network inputs of processed frames (the preprocess stage's images)."""
    images = np.stack([read_frame(PROCESSED_DIR / IMAGES / f"{frame_id}.png").gray for frame_id in frame_ids])
    return network_input(images, mean, std)


def write_contract(path: Path, contract: ModelContract) -> None:
    """Replaces the contract in an ONNX file's metadata (other metadata kept)."""
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                        CONTRACT_KEY: contract.to_json()})
    onnx.save(model, str(path))


def export_int8(float_model: Path, out: Path, contract: ModelContract, params: Params, train_ids: Sequence[str],
                test_ids: Sequence[str], table: pd.DataFrame, kernels: str | None = None) -> dict[str, Any]:
    """Quantises ``float_model`` into ``out`` if the result passes the gate; returns the report.

    Args:
        float_model: the exported float model (its contract is ``contract``).
        out: where the INT8 model goes; removed first (it is this step's own output), so a
            failed gate never leaves an older INT8 model behind.
        contract: the float model's contract.
        params: ``export.int8``, ``inference``, ``model.mean/std`` and ``data.classes``.
        train_ids, test_ids: the split's training frames (calibration) and test frames (gate).
        table: the processed manifest indexed by ``frame_id``.
        kernels: this CPU's 8-bit kernels (:data:`pipeline.inference.runtime.INT8_KERNELS`); None:
            detect them. Where they would compute the model inexactly (8-bit weights without
            VNNI), no model is made: its gate would measure saturated sums.

    Returns:
        ``reports/int8.json``'s content: ``enabled``, ``written``, and when it ran the method,
        frame counts, the float tail and the gate's figures.
    """
    settings = params.export.int8
    out.unlink(missing_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not settings.enabled:
        return {"enabled": False, "written": False}
    if not train_ids or not test_ids:
        return {"enabled": True, "written": False, "reason": "the split has no training or no test frames"}
    kernels = int8_kernels(cpu_flags()) if kernels is None else kernels
    if not int8_exact(kernels, settings.weight_bits):
        return {"enabled": True, "written": False, "weight_bits": settings.weight_bits,
                "reason": f"export.int8.weight_bits: {settings.weight_bits} on a CPU without VNNI, whose "
                          f"{kernels.upper()} kernels add 8-bit weights' products in 16 bits, which saturate: the "
                          "gate would measure wrong sums; use weight_bits: 7, or export on a CPU with VNNI"}
    calibration = evenly_spaced(list(train_ids), settings.calibration_frames)
    record: dict[str, Any] = {**quantization_format(settings.weight_bits), "calibration": settings.calibration,
                              "calibration_frames": len(calibration), "source_sha256": file_sha256(float_model)}
    try:
        with atomic_file(out) as partial:
            record["float_nodes"] = quantize_int8(float_model, partial, calibration_inputs(
                calibration, params.model.mean, params.model.std), settings.calibration, settings.weight_bits)
            write_contract(partial, replace(contract, quantization=record))
            result = run_gate(Segmenter(float_model, precision="fp32"), Segmenter(partial, kernels=kernels),
                              gate_frames(test_ids, table, len(params.data.classes)), params.inference.threshold,
                              params.inference.postprocess, settings.min_mask_dice, settings.max_metric_drop)
            record["gate"] = result.to_dict()
            if not result.passed:
                raise GateFailed(result)
            write_contract(partial, replace(contract, quantization=record))
    except GateFailed:
        return {"enabled": True, "written": False, **_report(record)}
    return {"enabled": True, "written": True, **_report(record)}


def _report(record: dict[str, Any]) -> dict[str, Any]:
    """The report's copy of the quantisation record (the SHA-256 and the node names left to the model file)."""
    kept = {key: value for key, value in record.items() if key not in ("source_sha256", "float_nodes")}
    return {**kept, "float_nodes": len(record.get("float_nodes", []))}


def describe(report: dict[str, Any], out: Path) -> list[str]:
    """The stage's lines about the INT8 step: what was written, and one line per failed figure."""
    if not report["enabled"]:
        return ["int8: off (export.int8.enabled: false)"]
    if "gate" not in report:
        return [f"int8: not written ({report.get('reason', 'no gate')})"]
    gate = report["gate"]
    agreement = ", ".join(f"{name} {value:.4f}" for name, value in gate["mask_dice"].items())
    worst = max(gate["metric_drop"].values(), default=0.0)
    figures = f"mask Dice vs fp32 {agreement}; largest metric drop {worst:+.4f} on {gate['frames']} test frames"
    if report["written"]:
        return [f"int8: {out} ({report['weight_bits']}-bit weights, {report['calibration']} calibration on "
                f"{report['calibration_frames']} training frames); gate passed: {figures}"]
    return [f"int8: gate failed, no INT8 model written ({figures})"] + [f"int8: {line}" for line in gate["failures"]]
