"""The training checkpoint ``models/checkpoint.pt``: weights plus what is needed to rebuild the network.

File content (``torch.save`` of a dict, readable with ``weights_only=True``): ``model``
(the ``ModelParams`` as a dict, ``plane_head`` resolved to a boolean by the train stage; a
checkpoint from before the plane head has no such key and no head; one from before
``plane_classifier`` has smp's head on the encoder), ``classes``, ``size``,
``epoch``, ``val_dice`` and ``state_dict``. Loading rebuilds the network through the same
factory as training (:func:`pipeline.training.model.build_model`: any
segmentation_models_pytorch architecture, or the project's SegNet and UNetBilinear) with
``encoder_weights=None``, so no download is ever needed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

import torch
from torch import nn

from pipeline.config import ModelParams, build
from pipeline.files.atomic import atomic_file
from pipeline.training.files import LOAD_ERRORS, first_line, load_torch_file
from pipeline.training.model import build_model

KEYS = ("model", "classes", "size", "epoch", "val_dice", "state_dict")


class CheckpointError(ValueError):
    """The checkpoint is missing, corrupt or does not fit its network; the message names the file."""


class CheckpointInfo(TypedDict):
    """What a checkpoint says about its network.

    Keys:
        model: the ModelParams it was trained with (``encoder_weights`` as in training,
            ``plane_head`` true or false).
        classes: output channel names, in order.
        size: S, the square input side in px.
        epoch: the (1-based) epoch of the saved weights: the last one trained (``train.keep:
            last``) or the best-scoring one (``keep: best``).
        val_dice: their validation score (mean of the class Dice values, in [0, 1]).
    """

    model: ModelParams
    classes: tuple[str, ...]
    size: int
    epoch: int
    val_dice: float


def save_checkpoint(path: Path, model: nn.Module | Mapping[str, torch.Tensor], model_params: ModelParams,
                    classes: tuple[str, ...], size: int, epoch: int, val_dice: float) -> None:
    """Writes the checkpoint via a temporary file and rename (never half-written).

    Args:
        path: target file; its folder is created.
        model: the logits network built by ``build_model(model_params, len(classes))``, or
            its ``state_dict``.
        model_params: how it was built (``plane_head`` resolved: true or false).
        classes: output channel names.
        size: S, the input side it was trained on.
        epoch: the epoch of these weights (1-based).
        val_dice: their validation score (the mean of the class Dice values, in [0, 1]).
    """
    weights = model.state_dict() if isinstance(model, nn.Module) else model
    payload = {"model": dataclasses.asdict(model_params), "classes": list(classes), "size": int(size),
               "epoch": int(epoch), "val_dice": float(val_dice),
               "state_dict": {name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()}}
    with atomic_file(path) as temporary:
        torch.save(payload, temporary)


def load_checkpoint(path: Path) -> tuple[nn.Module, CheckpointInfo]:
    """Rebuilds the network of a checkpoint on the CPU, in eval mode.

    Args:
        path: a file written by :func:`save_checkpoint`.

    Returns:
        The logits network ((N, 1, S, S) normalised images -> (N, C, S, S) logits, and (N, 2)
        plane logits with a plane head) and its info.

    Raises:
        CheckpointError: missing, corrupt, or not a checkpoint of this code's networks.
    """
    payload = load_torch_file(Path(path), CheckpointError, "training checkpoint")
    missing = [key for key in KEYS if not isinstance(payload, dict) or key not in payload]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (missing {', '.join(missing)})")
    try:
        before = {"plane_head": False, "plane_classifier": "encoder"}  # keys an older checkpoint lacks
        model_params = build(ModelParams, {**before, **payload["model"]}, "model")
        info = CheckpointInfo(model=model_params, classes=tuple(payload["classes"]), size=int(payload["size"]),
                              epoch=int(payload["epoch"]), val_dice=float(payload["val_dice"]))
        network = build_model(dataclasses.replace(model_params, encoder_weights=None, weights_path=None),
                              len(info["classes"]))
        network.load_state_dict(payload["state_dict"])
    except LOAD_ERRORS as error:  # ParamsError is a ValueError
        raise CheckpointError(f"{path}: does not rebuild its network ({first_line(error)})") from error
    return network.eval(), info
