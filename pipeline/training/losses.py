"""The training objective: a weighted sum of loss terms on logits, built from ``train.loss``.

Every term is multilabel: one sigmoid per class, p = sigmoid(logit), truth t in {0, 1};
classes may overlap (a lesion lies inside the gland). Terms:

- ``dice``: segmentation_models_pytorch ``DiceLoss``: per class c, over all pixels of the
  batch, 1 - 2 sum(p t) / (sum(p) + sum(t)); a class without truth pixels in the batch
  counts 0; then the mean over classes.
- ``bce``: mean over pixels and classes of -(w_c t log p + (1 - t) log(1 - p)), w_c the
  class's ``pos_weight`` (1 when null).
- ``focal``: segmentation_models_pytorch ``FocalLoss``: mean of -(1 - p_t)^gamma log p_t,
  p_t = p where t = 1 and 1 - p where t = 0, times alpha t + (1 - alpha)(1 - t) when alpha
  is set.
- ``tversky``: segmentation_models_pytorch ``TverskyLoss``: per class TI_c = TP / (TP + alpha
  FP + beta FN) with TP = sum(p t), FP = sum(p (1 - t)), FN = sum((1 - p) t) over the batch;
  loss = (mean over classes of (1 - TI_c))^gamma, a class without truth pixels counting 0.
  alpha = beta = 0.5 is Dice; gamma != 1 is focal-Tversky.
- ``boundary_bce``: BCE with pixel weights growing near the truth's edge
  (:mod:`pipeline.training.boundary`).
- ``presence``: per image n and class c, s = the mean of the k highest logits of the image
  (k = max(1, round(``top_fraction`` H W))) and y = 1 if the class has a truth pixel in the
  image, else 0; the mean over (n, c) of BCE(sigmoid(s), y). One invented blob in an image
  without the class costs as much as a whole missed class, whatever its size in pixels
  (a multiple-instance, image-level term; the pixel terms weigh a small blob by its area).
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError
from pipeline.loss_spec import LossParams
from pipeline.training.boundary import BoundaryBCELoss


class BCELoss(nn.Module):
    """Binary cross-entropy on logits, mean over (N, C, H, W), with an optional weight per class on positives."""

    def __init__(self, pos_weight: tuple[float, ...] | None = None) -> None:
        """``pos_weight``: None, or C factors > 0 multiplying the truth-1 pixels' term of each class."""
        super().__init__()
        self.pos_weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float32)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss of (N, C, H, W) logits against (N, C, H, W) float 0/1 targets."""
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(logits).view(-1, 1, 1)
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)


class PresenceLoss(nn.Module):
    """Image-level BCE on the mean of each image's and class's top logits (see the module docstring)."""

    def __init__(self, top_fraction: float) -> None:
        """``top_fraction``: in (0, 1], the share of an image's pixels whose logits are averaged."""
        super().__init__()
        self.top_fraction = top_fraction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss of (N, C, H, W) logits against (N, C, H, W) float 0/1 targets."""
        flat = logits.flatten(2)
        k = max(1, round(self.top_fraction * flat.shape[-1]))
        scores = flat.topk(k, dim=-1).values.mean(-1)
        present = (targets.flatten(2) > 0).any(-1).to(scores.dtype)
        return F.binary_cross_entropy_with_logits(scores, present)


class WeightedLoss(nn.Module):
    """``sum of weight * term(logits, targets)`` over named terms."""

    def __init__(self, terms: dict[str, tuple[float, nn.Module]]) -> None:
        """``terms``: name -> (weight > 0, a module mapping (logits, targets) to a scalar)."""
        super().__init__()
        self.weights = {name: weight for name, (weight, _) in terms.items()}
        self.terms = nn.ModuleDict({name: term for name, (_, term) in terms.items()})

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Scalar loss of (N, C, H, W) logits against (N, C, H, W) float 0/1 targets."""
        return sum(self.weights[name] * term(logits, targets) for name, term in self.terms.items())


def _term(name: str, params: LossParams) -> nn.Module:
    """The module of one term of ``train.loss``."""
    if name == "dice":
        return smp.losses.DiceLoss(mode="multilabel", from_logits=True)
    if name == "bce":
        return BCELoss(params.bce.pos_weight)
    if name == "focal":
        return smp.losses.FocalLoss(mode="multilabel", alpha=params.focal.alpha, gamma=params.focal.gamma)
    if name == "tversky":
        return smp.losses.TverskyLoss(mode="multilabel", from_logits=True, alpha=params.tversky.alpha,
                                      beta=params.tversky.beta, gamma=params.tversky.gamma)
    if name == "boundary_bce":
        return BoundaryBCELoss(params.boundary_bce.w0, params.boundary_bce.sigma)
    if name == "presence":
        return PresenceLoss(params.presence.top_fraction)
    raise ValueError(f"unknown loss term {name!r}")


def build_loss(params: LossParams, n_classes: int) -> WeightedLoss:
    """The training loss of ``train.loss``: its terms with a weight > 0, each times its weight.

    Args:
        params: the ``train.loss`` section.
        n_classes: C, the number of output channels (``data.classes``).

    Returns:
        A module mapping (N, C, H, W) logits and (N, C, H, W) float 0/1 targets to a scalar
        float32 loss (on the logits' device).

    Raises:
        ParamsError: ``bce.pos_weight`` does not have one value per class.
    """
    pos_weight = params.bce.pos_weight
    if pos_weight is not None and len(pos_weight) != n_classes:
        raise ParamsError(f"train.loss.bce.pos_weight has {len(pos_weight)} values, but data.classes has "
                          f"{n_classes} classes: give one per class, in order")
    return WeightedLoss({name: (weight, _term(name, params)) for name, weight in params.weights().items()})
