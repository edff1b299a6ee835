"""Building the network, its probability wrapper and the device.

``model.arch`` names any segmentation_models_pytorch architecture (``smp.create_model``) or
one of the project's own (:mod:`pipeline.training.architectures`: SegNet, UNetBilinear).
The network maps (N, 1, S, S) normalised grey images (``network_input``) to (N, C, S, S)
LOGITS, one channel per class of ``data.classes``, and, with ``model.plane_head: true``, also
to (N, 2) plane logits (:mod:`pipeline.training.plane_head`); :class:`ProbabilityModel` adds
the sigmoid (and the plane's softmax).
:func:`check_input_size` says up front whether an architecture trains and exports at S.
"""

from __future__ import annotations

from pathlib import Path

import httpx2  # huggingface_hub's HTTP client: its transport errors are not OSError
import segmentation_models_pytorch as smp
import torch
from torch import nn

from pipeline.config import ModelParams, ParamsError
from pipeline.training.architectures import PROJECT_ARCHITECTURES
from pipeline.training.frame_plane import FramePlaneClassifier, SegmenterWithFramePlane, segmenter_of
from pipeline.training.files import LOAD_ERRORS, first_line, load_torch_file
from pipeline.planes import PLANES
from pipeline.training.plane_head import HEAD_DROPOUT, split_output

IN_CHANNELS = 1
PRETRAINED_IN_CHANNELS = 3  # encoder weights files are RGB; smp folds them to grey
# What smp/timm/huggingface_hub/urllib raise when weights cannot be fetched (urllib's URLError,
# huggingface_hub's LocalEntryNotFoundError/HfHubHTTPError and socket errors are all OSError).
DOWNLOAD_ERRORS: tuple[type[Exception], ...] = (OSError, httpx2.HTTPError)
SIZE_MULTIPLE = 32  # 5 halvings in every encoder (smp's and the project's)
# lower-case arch -> (S must be a multiple of, S at least, why): what ONNX export (opset 18, TorchScript) needs
EVEN_BINS = "into 1, 2, 3 and 6 bins, which the ONNX exporter needs to divide them evenly"
SIZE_RULES: dict[str, tuple[int, int, str]] = {
    "pspnet": (96, 96, f"its pyramid pooling splits the 1/8-scale features {EVEN_BINS}"),
    "upernet": (192, 192, f"its pyramid pooling splits the 1/32-scale features {EVEN_BINS}"),
    "pan": (SIZE_MULTIPLE, 128, "its feature pyramid attention halves the 1/16-scale features 3 times"),
}
DEFAULT_RULE = (SIZE_MULTIPLE, SIZE_MULTIPLE, "the network halves the image 5 times")


class WeightsUnavailableError(OSError):
    """Pretrained encoder weights can be neither downloaded nor read from ``model.weights_path``."""


def check_input_size(model: ModelParams, size: int) -> None:
    """Checks that ``model.arch`` trains and exports to ONNX at ``preprocess.size``.

    Every architecture needs S divisible by 32; PSPNet a multiple of 96, UPerNet of 192,
    and PAN at least 128 (see :data:`SIZE_RULES`).

    Args:
        model: the ``model`` section.
        size: S, the square input side in px (``preprocess.size``).

    Raises:
        ParamsError: the size does not suit the architecture; the message names both keys.
    """
    multiple, minimum, why = SIZE_RULES.get(model.arch.lower(), DEFAULT_RULE)
    if size % multiple or size < minimum:
        need = f"a multiple of {multiple}" + (f" of at least {minimum}" if minimum > multiple else "")
        raise ParamsError(f"preprocess.size {size} does not suit model.arch {model.arch}: it must be {need} ({why})")


def _create(model: ModelParams, n_classes: int, encoder_weights: str | None, in_channels: int) -> nn.Module:
    """The project architecture, or ``smp.create_model``, with unknown names as :class:`ParamsError`.

    With ``model.plane_head`` true, the plane head is a
    :class:`~pipeline.training.frame_plane.FramePlaneClassifier` beside the network
    (``plane_classifier: frame``) or smp's classification head on its encoder (``encoder``).
    """
    if model.arch in PROJECT_ARCHITECTURES:  # ModelParams made the name canonical and the weights null
        return PROJECT_ARCHITECTURES[model.arch](in_channels=in_channels, classes=n_classes)
    on_encoder = model.plane_head is True and model.plane_classifier == "encoder"
    head = {"aux_params": {"classes": len(PLANES), "dropout": HEAD_DROPOUT}} if on_encoder else {}
    try:
        network = smp.create_model(model.arch, encoder_name=model.encoder, encoder_weights=encoder_weights,
                                   in_channels=in_channels, classes=n_classes, **head)
    except KeyError as error:  # smp's message lists the valid names
        raise ParamsError(f"model: {error.args[0]} (or the project's {', '.join(PROJECT_ARCHITECTURES)})") from error
    if model.plane_head is True and not on_encoder:
        return SegmenterWithFramePlane(network, FramePlaneClassifier(in_channels=IN_CHANNELS))
    return network


def _download_hint(encoder: str, error: Exception) -> str:
    return (f"the pretrained weights for encoder '{encoder}' could not be downloaded ({first_line(error)}); "
            f"train from scratch with `dvc exp run -S model.encoder_weights=null`, or use a local file "
            f"with `dvc exp run -S model.weights_path=/path/to/{encoder}.pth`")


def _with_local_encoder(model: ModelParams, n_classes: int, path: Path) -> nn.Module:
    """Builds the network and loads an RGB encoder state_dict from ``path``, folded to grey like smp does."""
    network = _create(model, n_classes, None, PRETRAINED_IN_CHANNELS)
    encoder = segmenter_of(network).encoder
    if not hasattr(encoder, "set_in_channels"):
        raise ParamsError(f"model.weights_path is not supported for encoder '{model.encoder}' "
                          "(only segmentation_models_pytorch's own encoders, not 'tu-' ones)")
    state = load_torch_file(path, WeightsUnavailableError, "encoder weights file (model.weights_path)")
    try:
        encoder.load_state_dict(state)
    except LOAD_ERRORS as error:
        raise WeightsUnavailableError(f"{path}: not a state_dict of encoder '{model.encoder}' "
                                      f"(model.weights_path): {first_line(error)}") from error
    encoder.set_in_channels(IN_CHANNELS, pretrained=True)
    return network


def build_model(model: ModelParams, n_classes: int) -> nn.Module:
    """Builds the segmentation network from the ``model`` section of params.yaml.

    ``model.weights_path`` (a local RGB encoder state_dict) takes precedence over
    ``model.encoder_weights`` (downloaded through segmentation_models_pytorch). The
    project's architectures (SegNet, UNetBilinear) have neither: they start from random
    weights, and :class:`~pipeline.config.ModelParams` has already refused weights for them.

    Args:
        model: architecture, encoder, encoder weights and plane head (only ``true`` builds
            one: ``auto`` is resolved by the train stage first, see
            :func:`pipeline.training.plane_head.resolve_plane_head`).
        n_classes: C, the number of output channels.

    Returns:
        A module mapping (N, 1, S, S) float32 normalised images to (N, C, S, S) logits,
        S divisible by 32; with the plane head, to ((N, C, S, S), (N, 2)) logits.

    Raises:
        ParamsError: unknown architecture, encoder or weights name.
        WeightsUnavailableError: the weights cannot be downloaded, or the local file is
            missing or does not fit the encoder; the message says how to proceed.
    """
    if model.weights_path is not None:
        return _with_local_encoder(model, n_classes, Path(model.weights_path))
    if model.encoder_weights is None:
        return _create(model, n_classes, None, IN_CHANNELS)
    try:
        return _create(model, n_classes, model.encoder_weights, IN_CHANNELS)
    except DOWNLOAD_ERRORS as error:
        raise WeightsUnavailableError(_download_hint(model.encoder, error)) from error


class ProbabilityModel(nn.Module):
    """A logits network followed by a sigmoid, and a softmax of its plane logits (the exported ONNX graph)."""

    def __init__(self, model: nn.Module) -> None:
        """Wraps ``model``, which returns (N, C, S, S) logits, or those and (N, 2) plane logits."""
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, S, S) normalised images -> (N, C, S, S) probabilities in [0, 1]; with a plane head,
        also (N, 2) plane probabilities (rows sum to 1, in the order of ``PLANES``)."""
        logits, plane_logits = split_output(self.model(images))
        if plane_logits is None:
            return torch.sigmoid(logits)
        return torch.sigmoid(logits), torch.softmax(plane_logits, dim=1)


def resolve_device(name: str) -> torch.device:
    """The torch device for ``train.device``.

    Args:
        name: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda``.

    Raises:
        ParamsError: ``cuda`` requested but no CUDA device is available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParamsError("train.device is cuda but no CUDA device is available; use auto or cpu")
    return torch.device(name)
