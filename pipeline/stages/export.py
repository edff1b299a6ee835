"""Stage ``export``: the best checkpoint -> ``models/model.onnx`` with its whole contract.

The sigmoid is inside the graph (output: probabilities). The contract (classes,
preprocessing spec, normalisation, threshold, test metrics, dataset and code versions)
is stored in the ONNX metadata. ONNX Runtime must agree with PyTorch on test frames,
or nothing is written.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from pipeline.config import Params, load_params
from pipeline.imaging.frames import read_frame
from pipeline.inference.contract import CONTRACT_KEY, INPUT_NAME, OUTPUT_NAME, ModelContract
from pipeline.inference.predictor import Segmenter
from pipeline.layout import (CHECKPOINT_FILE, FRAMES_DIR, IMAGES, METRICS_FILE, MODEL_FILE, PROCESSED_DIR,
                             SOURCE_INFO, SPLIT_FILE)
from pipeline.stages.runner import require_file, run_stage
from pipeline.training.predict import predict_probabilities
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.model import ProbabilityModel

PARITY_FRAMES = 4
CODE_PATHS = ("pipeline", "app")


def code_version() -> str:
    """The git commit of the code, ``+modified`` when tracked code differs from it; ``unknown`` outside git.

    Only code folders count: parameters (changed by every ``dvc exp run -S``) are in the
    contract already.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        modified = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+modified" if modified else commit


def build_contract(params: Params, metrics: dict, source: dict) -> ModelContract:
    """The contract stored in the model, from params, test metrics and the export's provenance."""
    return ModelContract(
        classes=params.data.classes, preprocess=params.preprocess, mean=params.model.mean, std=params.model.std,
        threshold=params.inference.threshold, arch=params.model.arch, encoder=params.model.encoder,
        metrics=metrics.get("test", {}), dataset_version=str(source.get("dataset_version", "unknown")),
        code_version=code_version(), note=str(source.get("info", {}).get("description", "")),
    )


def export_onnx(model: torch.nn.Module, size: int, opset: int, path: Path, contract: ModelContract) -> None:
    """Writes ``model`` + sigmoid as ONNX (dynamic batch) with the contract in its metadata."""
    wrapped = ProbabilityModel(model).eval()
    dummy = torch.zeros(1, 1, size, size)
    with warnings.catch_warnings():  # the TorchScript exporter is chosen on purpose (no onnxscript needed)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(wrapped, (dummy,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset, dynamo=False)
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, {CONTRACT_KEY: contract.to_json()})
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def parity_error(model: torch.nn.Module, path: Path, images: np.ndarray, mean: float, std: float) -> float:
    """Max |ONNX Runtime - PyTorch| probability over ``images`` ((N, S, S) uint8 processed frames)."""
    reference = predict_probabilities(model, images, mean, std)
    exported = Segmenter(path).predict_processed(images)
    return float(np.abs(reference - exported).max())


def main() -> None:
    """Exports, parity-checks and moves the model into place."""
    params = load_params()
    for path, stage in ((CHECKPOINT_FILE, "train"), (METRICS_FILE, "evaluate"), (SPLIT_FILE, "split"),
                        (FRAMES_DIR / SOURCE_INFO, "pull")):
        require_file(path, stage)
    model, _ = load_checkpoint(CHECKPOINT_FILE)
    contract = build_contract(params, json.loads(METRICS_FILE.read_text()),
                              json.loads((FRAMES_DIR / SOURCE_INFO).read_text()))
    test_ids = json.loads(SPLIT_FILE.read_text())["frames"]["test"][:PARITY_FRAMES]
    images = np.stack([read_frame(PROCESSED_DIR / IMAGES / f"{frame_id}.png").gray for frame_id in test_ids])
    MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
    partial = MODEL_FILE.with_name(f".{MODEL_FILE.name}.partial")
    try:
        export_onnx(model, params.preprocess.size, params.export.opset, partial, contract)
        error = parity_error(model, partial, images, params.model.mean, params.model.std)
        if error > params.export.parity_atol:
            raise ValueError(f"{MODEL_FILE}: ONNX Runtime and PyTorch disagree by {error:.2e} "
                             f"(> export.parity_atol {params.export.parity_atol}); model not written")
        partial.replace(MODEL_FILE)
    finally:
        partial.unlink(missing_ok=True)
    size_mb = MODEL_FILE.stat().st_size / 1e6
    print(f"export: {MODEL_FILE} ({size_mb:.1f} MB, opset {params.export.opset}); "
          f"max |ORT - PyTorch| = {error:.1e} on {len(images)} test frames")


if __name__ == "__main__":
    run_stage(main)
