"""Exporting a trained network to ONNX with its whole contract, checked against PyTorch.

The sigmoid is inside the graph (output: probabilities). The contract (classes,
preprocessing spec, normalisation, threshold and post-processing, test metrics, dataset
and code versions) is stored in the ONNX metadata (:mod:`pipeline.inference.contract`).
ONNX Runtime must agree with PyTorch on given frames, or nothing is written.
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from pipeline.config import Params
from pipeline.files.atomic import atomic_file
from pipeline.inference.contract import CONTRACT_KEY, INPUT_NAME, OUTPUT_NAME, ModelContract
from pipeline.inference.predictor import Segmenter
from pipeline.training.model import ProbabilityModel
from pipeline.training.predict import predict_probabilities

CODE_PATHS = ("pipeline", "app")


class ParityError(ValueError):
    """ONNX Runtime and PyTorch disagree on the exported model; nothing was written."""


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
    """The contract stored in the model, from params, test metrics and the export's provenance.

    Args:
        params: the whole params.yaml.
        metrics: the evaluate stage's ``reports/metrics.json`` (its ``test`` summary, of the
            post-processed masks, is kept).
        source: the pull stage's ``source.json`` (dataset version digest and COCO ``info``).

    Raises:
        ParamsError: ``inference.postprocess`` names a class not in ``data.classes``.
    """
    params.inference.check_classes(params.data.classes)
    return ModelContract(
        classes=params.data.classes, preprocess=params.preprocess, mean=params.model.mean, std=params.model.std,
        threshold=params.inference.threshold, postprocess=params.inference.postprocess, arch=params.model.arch,
        encoder=params.model.encoder, metrics=metrics.get("test", {}),
        dataset_version=str(source.get("dataset_version", "unknown")), code_version=code_version(),
        note=str(source.get("info", {}).get("description", "")),
    )


def export_onnx(model: torch.nn.Module, size: int, opset: int, path: Path, contract: ModelContract) -> None:
    """Writes ``model`` + sigmoid as ONNX (dynamic batch, (N, 1, size, size) input) with the contract in its metadata."""
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


def export_checked(model: torch.nn.Module, contract: ModelContract, opset: int, images: np.ndarray,
                   atol: float, path: Path) -> float:
    """Exports to ``path`` only if ONNX Runtime matches PyTorch on ``images`` within ``atol``.

    Args:
        model: the logits network.
        contract: its contract (size, normalisation...).
        opset: the ONNX opset.
        images: (N, S, S) uint8 processed frames for the parity check, N >= 1.
        atol: the largest |ORT - PyTorch| probability difference allowed.
        path: the model file; written atomically, and left as it was on any failure.

    Returns:
        The measured max |ORT - PyTorch| difference.

    Raises:
        ParityError: the difference exceeds ``atol``.
    """
    with atomic_file(path) as partial:
        export_onnx(model, contract.size, opset, partial, contract)
        error = parity_error(model, partial, images, contract.mean, contract.std)
        if not error <= atol:
            raise ParityError(f"{path}: ONNX Runtime and PyTorch disagree by {error:.2e} "
                              f"(> export.parity_atol {atol}); model not written")
    return error
