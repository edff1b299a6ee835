"""PyTorch inference on preprocessed frames (validation, evaluation and the export parity check).

Evaluation runs on the GPU when there is one (:func:`evaluation_device`); the export's parity
check stays on the CPU, where ONNX Runtime runs in the clinic. Test-time flips
(``inference.flips``) average the probabilities over mirror images of the frames as the
exported model's runtime does (:mod:`pipeline.inference.flips`).
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.imaging.preprocessing import network_input
from pipeline.inference.flips import flip_axes
from pipeline.training.plane_head import split_output


def evaluation_device(cuda_available: bool | None = None) -> torch.device:
    """``cuda`` when a CUDA device is usable (``cuda_available``, or asked of torch when None), else ``cpu``."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    return torch.device("cuda" if available else "cpu")


@torch.no_grad()
def mirrored_outputs(model: torch.nn.Module, images: torch.Tensor, flips: str = "none"
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Sigmoid and plane softmax probabilities of a logits model, averaged over the mirror images of ``flips``.

    Args:
        model: a segmentation model returning (N, C, S, S) logits, or those and (N, K) plane
            logits (a plane head, :mod:`pipeline.training.plane_head`).
        images: (N, 1, S, S) float network input, on the model's device.
        flips: a choice of :data:`pipeline.inference.flips.FLIPS`; each pass's output is
            mirrored back before the mean.

    Returns:
        (N, C, S, S) float32 probabilities in [0, 1] and (N, K) float32 plane probabilities
        (None without a plane head), on the input's device.
    """
    axes_list = flip_axes(flips)
    probabilities, planes = None, None
    for axes in axes_list:
        logits, plane_logits = split_output(model(torch.flip(images, axes) if axes else images))
        passed = torch.sigmoid(logits.float())
        passed = torch.flip(passed, axes) if axes else passed
        probabilities = passed if probabilities is None else probabilities + passed
        if plane_logits is not None:
            passed_planes = torch.softmax(plane_logits.float(), dim=1)
            planes = passed_planes if planes is None else planes + passed_planes
    count = len(axes_list)
    return probabilities / count, None if planes is None else planes / count


@torch.no_grad()
def predict_outputs(model: torch.nn.Module, images: np.ndarray, mean: float, std: float, batch_size: int = 4,
                    device: torch.device | str = "cpu", flips: str = "none") -> tuple[np.ndarray, np.ndarray | None]:
    """Sigmoid probabilities of a logits model on processed frames, and its plane probabilities.

    Args:
        model: a segmentation model returning (N, C, S, S) logits, or those and (N, 2) plane
            logits (a plane head, :mod:`pipeline.training.plane_head`).
        images: (N, S, S) uint8 processed frames.
        mean, std: the model's input normalisation.
        batch_size: frames per forward pass.
        device: where the network runs (the model is moved there); the results are on the CPU.
        flips: test-time flips (``inference.flips``, :func:`mirrored_outputs`); ``none``: one pass.

    Returns:
        (N, C, S, S) float32 probabilities in [0, 1], and (N, 2) float32 softmax plane
        probabilities in the order of ``PLANES`` (None without a plane head).
    """
    device = torch.device(device)
    model = model.eval().to(device)
    masks, planes = [], []
    for start in range(0, len(images), batch_size):
        tensor = torch.from_numpy(network_input(images[start:start + batch_size], mean, std)).to(device)
        probabilities, plane_probabilities = mirrored_outputs(model, tensor, flips)
        masks.append(probabilities.cpu().numpy())
        if plane_probabilities is not None:
            planes.append(plane_probabilities.cpu().numpy())
    return np.concatenate(masks).astype(np.float32), np.concatenate(planes).astype(np.float32) if planes else None


def predict_probabilities(model: torch.nn.Module, images: np.ndarray, mean: float, std: float,
                          batch_size: int = 4, device: torch.device | str = "cpu", flips: str = "none") -> np.ndarray:
    """Sigmoid probabilities of a logits model on processed frames.

    Args:
        model: a segmentation model returning (N, C, S, S) logits (and plane logits, ignored).
        images: (N, S, S) uint8 processed frames.
        mean, std: the model's input normalisation.
        batch_size: frames per forward pass.
        device: where the network runs (the model is moved there); the result is on the CPU.
        flips: test-time flips (:func:`mirrored_outputs`).

    Returns:
        (N, C, S, S) float32 probabilities in [0, 1].
    """
    return predict_outputs(model, images, mean, std, batch_size, device, flips)[0]
