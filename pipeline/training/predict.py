"""PyTorch inference on preprocessed frames (evaluation and the export parity check)."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.imaging.preprocessing import network_input


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, images: np.ndarray, mean: float, std: float,
                          batch_size: int = 4) -> np.ndarray:
    """Sigmoid probabilities of a logits model on processed frames, on the CPU.

    Args:
        model: a segmentation model returning (N, C, S, S) logits.
        images: (N, S, S) uint8 processed frames.
        mean, std: the model's input normalisation.
        batch_size: frames per forward pass.

    Returns:
        (N, C, S, S) float32 probabilities in [0, 1].
    """
    model = model.eval().cpu()
    outputs = []
    for start in range(0, len(images), batch_size):
        tensor = torch.from_numpy(network_input(images[start:start + batch_size], mean, std))
        outputs.append(torch.sigmoid(model(tensor)).numpy())
    return np.concatenate(outputs).astype(np.float32)
