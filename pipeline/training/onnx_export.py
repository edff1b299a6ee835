"""Exporting a trained network to ONNX with its whole contract, checked against PyTorch.

The sigmoid is inside the graph (output: probabilities). A network with a plane head
(:mod:`pipeline.training.plane_head`) has a second output, ``plane``: the softmax of its plane
logits, (N, 2) in the order of ``PLANES``. The contract (classes, preprocessing spec,
normalisation, threshold and post-processing, plane classes, test metrics, dataset and code
versions) is stored in the ONNX metadata (:mod:`pipeline.inference.contract`). ONNX Runtime
must agree with PyTorch on given frames, on both outputs, or nothing is written.

FPN's ``add`` merge is exported as a chain of additions (:func:`chained_fpn_merges`): the same
sum, bit for bit, in a graph whose INT8 version adds the pyramid's levels in 8 bits.
"""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import torch
from segmentation_models_pytorch.decoders.fpn.decoder import MergeBlock

from pipeline.config import Params
from pipeline.files.atomic import atomic_file
from pipeline.inference.contract import CONTRACT_KEY, INPUT_NAME, OUTPUT_NAME, PLANE_OUTPUT_NAME, ModelContract
from pipeline.inference.predictor import Segmenter
from pipeline.planes import PLANES
from pipeline.training.model import ProbabilityModel
from pipeline.training.predict import predict_outputs

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


def build_contract(params: Params, metrics: dict, source: dict, plane_head: bool = False) -> ModelContract:
    """The contract stored in the model, from params, test metrics and the export's provenance.

    Args:
        params: the whole params.yaml.
        metrics: the evaluate stage's ``reports/metrics.json`` (its ``test`` summary, of the
            post-processed masks, is kept).
        source: the pull stage's ``source.json`` (dataset version digest and COCO ``info``).
        plane_head: whether the network has a plane head (the checkpoint's resolved
            ``model.plane_head``): the contract then names the plane classes, ``PLANES``.

    Raises:
        ParamsError: ``inference.postprocess`` names a class not in ``data.classes``.
    """
    params.inference.check_classes(params.data.classes)
    return ModelContract(
        classes=params.data.classes, preprocess=params.preprocess, mean=params.model.mean, std=params.model.std,
        threshold=params.inference.threshold, postprocess=params.inference.postprocess,
        flips=params.inference.flips, arch=params.model.arch,
        encoder=params.model.encoder, metrics=metrics.get("test", {}),
        dataset_version=str(source.get("dataset_version", "unknown")), code_version=code_version(),
        note=str(source.get("info", {}).get("description", "")), plane_classes=PLANES if plane_head else None,
    )


class SumMerge(torch.nn.Module):
    """FPN's ``add`` merge as a chain of additions: the same sum, bit for bit, as
    segmentation_models_pytorch's ``torch.stack(x).sum(dim=0)``, without the stack.

    Exported, smp's stack becomes Unsqueeze + Concat + ReduceSum, and the INT8 model then
    dequantises the whole (4, N, 128, S/4, S/4) stack to float to sum it (30-40 ms of the
    product model's 0.6 s per frame on two cores). Additions stay 8-bit (``QLinearAdd``).
    """

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """k tensors of one shape (N, C, H, W) -> their sum (N, C, H, W), added left to right."""
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total


@contextmanager
def chained_fpn_merges(network: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Within the block, every FPN ``add`` merge of ``network`` is a :class:`SumMerge`; smp's
    merges are put back after it. The merges have no weights, so the state_dict is unchanged."""
    swapped = [(parent, name, child) for parent in network.modules() for name, child in parent.named_children()
               if isinstance(child, MergeBlock) and child.policy == "add"]
    for parent, name, _ in swapped:
        setattr(parent, name, SumMerge())
    try:
        yield network
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def export_onnx(model: torch.nn.Module, size: int, opset: int, path: Path, contract: ModelContract) -> None:
    """Writes ``model`` + sigmoid (and the plane softmax) as ONNX with the contract in its metadata.

    Input (N, 1, size, size), dynamic batch; outputs ``probabilities`` (N, C, size, size) and,
    when the contract names plane classes, ``plane`` (N, 2).

    Raises:
        ValueError: the contract's ``plane_classes`` and the network's plane head disagree.
    """
    wrapped = ProbabilityModel(model).eval()
    dummy = torch.zeros(1, 1, size, size)
    with torch.no_grad():
        has_head = isinstance(wrapped(dummy), tuple)
    if has_head != (contract.plane_classes is not None):
        raise ValueError(f"the network {'has' if has_head else 'has no'} plane head but the contract's plane_classes "
                         f"are {contract.plane_classes}")
    outputs = [OUTPUT_NAME, PLANE_OUTPUT_NAME] if has_head else [OUTPUT_NAME]
    with warnings.catch_warnings(), chained_fpn_merges(wrapped):
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter, on purpose (no onnxscript)
        torch.onnx.export(wrapped, (dummy,), str(path), input_names=[INPUT_NAME], output_names=outputs,
                          dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *outputs)},
                          opset_version=opset, dynamo=False)
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, {CONTRACT_KEY: contract.to_json()})
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def parity_error(model: torch.nn.Module, path: Path, images: np.ndarray, mean: float, std: float) -> float:
    """Max |ONNX Runtime - PyTorch| probability over ``images`` ((N, S, S) uint8 processed frames), over
    both outputs (the mask probabilities and, with a plane head, the plane probabilities)."""
    reference, reference_planes = predict_outputs(model, images, mean, std)
    exported, exported_planes = Segmenter(path, precision="fp32").run_processed(images)
    error = float(np.abs(reference - exported).max())
    if reference_planes is not None or exported_planes is not None:
        if reference_planes is None or exported_planes is None:
            return float("inf")
        error = max(error, float(np.abs(reference_planes - exported_planes).max()))
    return error


def export_checked(model: torch.nn.Module, contract: ModelContract, opset: int, images: np.ndarray,
                   atol: float, path: Path) -> float:
    """Exports to ``path`` only if ONNX Runtime matches PyTorch on ``images`` within ``atol``.

    Args:
        model: the logits network.
        contract: its contract (size, normalisation...).
        opset: the ONNX opset.
        images: (N, S, S) uint8 processed frames for the parity check, N >= 1.
        atol: the largest |ORT - PyTorch| probability difference allowed (either output).
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
