"""PyTorch inference on preprocessed frames (evaluation and the export parity check).

Evaluation runs on the GPU when there is one (:func:`evaluation_device`); the export's parity
check stays on the CPU, where ONNX Runtime runs in the clinic.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.imaging.preprocessing import network_input


def evaluation_device(cuda_available: bool | None = None) -> torch.device:
    """``cuda`` when a CUDA device is usable (``cuda_available``, or asked of torch when None), else ``cpu``."""
    available = torch.cuda.is_available() if cuda_available is None else cuda_available
    return torch.device("cuda" if available else "cpu")


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, images: np.ndarray, mean: float, std: float,
                          batch_size: int = 4, device: torch.device | str = "cpu") -> np.ndarray:
    """Sigmoid probabilities of a logits model on processed frames.

    Args:
        model: a segmentation model returning (N, C, S, S) logits.
        images: (N, S, S) uint8 processed frames.
        mean, std: the model's input normalisation.
        batch_size: frames per forward pass.
        device: where the network runs (the model is moved there); the result is on the CPU.

    Returns:
        (N, C, S, S) float32 probabilities in [0, 1].
    """
    device = torch.device(device)
    model = model.eval().to(device)
    outputs = []
    for start in range(0, len(images), batch_size):
        tensor = torch.from_numpy(network_input(images[start:start + batch_size], mean, std)).to(device)
        outputs.append(torch.sigmoid(model(tensor)).float().cpu().numpy())
    return np.concatenate(outputs).astype(np.float32)
