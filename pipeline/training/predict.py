"""PyTorch inference on preprocessed frames (evaluation and the export parity check).

Evaluation runs on the GPU when there is one (:func:`evaluation_device`); the export's parity
check stays on the CPU, where ONNX Runtime runs in the clinic.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.imaging.preprocessing import network_input
from pipeline.training.plane_head import split_output


def evaluation_device(cuda_available: bool | None = None) -> torch.device:
    """``cuda`` when a CUDA device is usable (``cuda_available``, or asked of torch when None), else ``cpu``."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    return torch.device("cuda" if available else "cpu")


@torch.no_grad()
def predict_outputs(model: torch.nn.Module, images: np.ndarray, mean: float, std: float, batch_size: int = 4,
                    device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """Sigmoid probabilities of a logits model on processed frames, and its plane probabilities.

    Args:
        model: a segmentation model returning (N, C, S, S) logits, or those and (N, 2) plane
            logits (a plane head, :mod:`pipeline.training.plane_head`).
        images: (N, S, S) uint8 processed frames.
        mean, std: the model's input normalisation.
        batch_size: frames per forward pass.
        device: where the network runs (the model is moved there); the results are on the CPU.

    Returns:
        (N, C, S, S) float32 probabilities in [0, 1], and (N, 2) float32 softmax plane
        probabilities in the order of ``PLANES`` (None without a plane head).
    """
    device = torch.device(device)
    model = model.eval().to(device)
    masks, planes = [], []
    for start in range(0, len(images), batch_size):
        tensor = torch.from_numpy(network_input(images[start:start + batch_size], mean, std)).to(device)
        logits, plane_logits = split_output(model(tensor))
        masks.append(torch.sigmoid(logits).float().cpu().numpy())
        if plane_logits is not None:
            planes.append(torch.softmax(plane_logits.float(), dim=1).cpu().numpy())
    return np.concatenate(masks).astype(np.float32), np.concatenate(planes).astype(np.float32) if planes else None


def predict_probabilities(model: torch.nn.Module, images: np.ndarray, mean: float, std: float,
                          batch_size: int = 4, device: torch.device | str = "cpu") -> np.ndarray:
    """Sigmoid probabilities of a logits model on processed frames.

    Args:
        model: a segmentation model returning (N, C, S, S) logits (and plane logits, ignored).
        images: (N, S, S) uint8 processed frames.
        mean, std: the model's input normalisation.
        batch_size: frames per forward pass.
        device: where the network runs (the model is moved there); the result is on the CPU.

    Returns:
        (N, C, S, S) float32 probabilities in [0, 1].
    """
    return predict_outputs(model, images, mean, std, batch_size, device)[0]
