"""The training loss's parameters (``train.loss`` in params.yaml), typed and checked.

The loss is a weighted sum of terms; each term has its own section with a ``weight`` (0
leaves it out) and its parameters. Read by :mod:`pipeline.config` as part of
``TrainParams``; built by :func:`pipeline.training.losses.build_loss`, whose docstrings
give the formulas. A bad value raises ValueError naming the key under ``train.loss``
(``focal.gamma``), which :func:`pipeline.config.build` turns into a ParamsError naming the
file; an unknown term name is an unknown key there.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields


def _check_number(key: str, value: object, low: float, *, open_low: bool = False) -> None:
    """Raises ValueError unless ``value`` is a finite number (not a bool) >= low (> low if ``open_low``)."""
    is_number = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if not is_number or value < low or (open_low and value == low):
        raise ValueError(f"{key} must be a number {'>' if open_low else '>='} {low:g}, got {value!r}")


@dataclass(frozen=True)
class DiceTerm:
    """Soft Dice loss (``train.loss.dice``)."""

    weight: float = 1.0

    def __post_init__(self) -> None:
        _check_number("dice.weight", self.weight, 0)


@dataclass(frozen=True)
class BceTerm:
    """Binary cross-entropy (``train.loss.bce``); ``pos_weight``: null, or one factor > 0 per class of
    ``data.classes`` on the positive (truth = 1) pixels' term."""

    weight: float = 1.0
    pos_weight: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _check_number("bce.weight", self.weight, 0)
        if self.pos_weight is not None:
            if not isinstance(self.pos_weight, tuple) or not self.pos_weight:
                raise ValueError(f"bce.pos_weight must be null or a list of numbers > 0, one per class; "
                                 f"got {self.pos_weight!r}")
            for value in self.pos_weight:
                _check_number("bce.pos_weight", value, 0, open_low=True)


@dataclass(frozen=True)
class FocalTerm:
    """Focal loss (``train.loss.focal``): ``gamma`` >= 0 focuses on hard pixels; ``alpha`` null or in
    [0, 1] weights positive pixels by alpha and negative ones by 1 - alpha."""

    weight: float = 0.0
    gamma: float = 2.0
    alpha: float | None = None

    def __post_init__(self) -> None:
        _check_number("focal.weight", self.weight, 0)
        _check_number("focal.gamma", self.gamma, 0)
        if self.alpha is not None:
            _check_number("focal.alpha", self.alpha, 0)
            if self.alpha > 1:
                raise ValueError(f"focal.alpha must be null or a number in [0, 1], got {self.alpha!r}")


@dataclass(frozen=True)
class TverskyTerm:
    """Tversky / focal-Tversky loss (``train.loss.tversky``): ``alpha`` weights false positives, ``beta``
    false negatives (both >= 0, not both 0); ``gamma`` > 0 is the exponent (1: plain Tversky)."""

    weight: float = 0.0
    alpha: float = 0.3
    beta: float = 0.7
    gamma: float = 1.0

    def __post_init__(self) -> None:
        _check_number("tversky.weight", self.weight, 0)
        _check_number("tversky.alpha", self.alpha, 0)
        _check_number("tversky.beta", self.beta, 0)
        _check_number("tversky.gamma", self.gamma, 0, open_low=True)
        if self.alpha + self.beta == 0:
            raise ValueError("tversky.alpha and tversky.beta cannot both be 0")


@dataclass(frozen=True)
class BoundaryBceTerm:
    """Boundary-weighted BCE (``train.loss.boundary_bce``): pixel weights 1 + w0 exp(-d^2 / (2 sigma^2)),
    d the distance in px to the truth boundary; ``w0`` >= 0, ``sigma`` > 0 px."""

    weight: float = 0.0
    w0: float = 10.0
    sigma: float = 5.0

    def __post_init__(self) -> None:
        _check_number("boundary_bce.weight", self.weight, 0)
        _check_number("boundary_bce.w0", self.w0, 0)
        _check_number("boundary_bce.sigma", self.sigma, 0, open_low=True)


@dataclass(frozen=True)
class PresenceTerm:
    """Presence loss (``train.loss.presence``): per frame (or training window) and class, BCE of the
    mean of the ``top_fraction`` highest logits against whether the class is there at all;
    ``top_fraction`` in (0, 1]: 1 / (H W) is the single highest pixel, 1 every pixel."""

    weight: float = 0.0
    top_fraction: float = 0.005

    def __post_init__(self) -> None:
        _check_number("presence.weight", self.weight, 0)
        _check_number("presence.top_fraction", self.top_fraction, 0, open_low=True)
        if self.top_fraction > 1:
            raise ValueError(f"presence.top_fraction must be a number in (0, 1], got {self.top_fraction!r}")


@dataclass(frozen=True)
class LossParams:
    """The training loss (``train.loss``): the sum of each term times its ``weight``.

    The default, Dice + BCE with weights 1 and 1, is the loss the project always trained with.
    """

    dice: DiceTerm = field(default_factory=DiceTerm)
    bce: BceTerm = field(default_factory=BceTerm)
    focal: FocalTerm = field(default_factory=FocalTerm)
    tversky: TverskyTerm = field(default_factory=TverskyTerm)
    boundary_bce: BoundaryBceTerm = field(default_factory=BoundaryBceTerm)
    presence: PresenceTerm = field(default_factory=PresenceTerm)

    def __post_init__(self) -> None:
        if not self.weights():
            names = ", ".join(f"{term.name}.weight" for term in fields(self))
            raise ValueError(f"every term's weight is 0 ({names}); give at least one a weight > 0")

    def weights(self) -> dict[str, float]:
        """Term name -> weight, for the terms with a weight > 0, in declaration order."""
        return {term.name: float(getattr(self, term.name).weight) for term in fields(self)
                if getattr(self, term.name).weight > 0}


__all__ = ["BceTerm", "BoundaryBceTerm", "DiceTerm", "FocalTerm", "LossParams", "PresenceTerm", "TverskyTerm"]
