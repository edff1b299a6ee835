"""The training losses (pipeline/training/losses.py, boundary.py) and their params (pipeline/loss_spec.py).

Every expected number is worked out by hand in the comments, on 1 x 4 and 1 x 5 "images" whose
probabilities are 0.25, 0.5 and 0.75 (logits -ln 3, 0, ln 3).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.config import Params, ParamsError, build
from pipeline.loss_spec import BceTerm, BoundaryBceTerm, DiceTerm, FocalTerm, LossParams, PresenceTerm, TverskyTerm
from pipeline.training.boundary import boundary_distance, boundary_weights
from pipeline.training.losses import build_loss

LN3, LN2, LN4, LN43 = math.log(3), math.log(2), math.log(4), math.log(4 / 3)
# One frame, one class, 1 x 4 pixels: truth t = [1, 1, 0, 0], probabilities p = [0.75, 0.5, 0.25, 0.75].
LOGITS = torch.tensor([LN3, 0.0, -LN3, LN3]).view(1, 1, 1, 4)
TRUTH = torch.tensor([1.0, 1.0, 0.0, 0.0]).view(1, 1, 1, 4)
# Per-pixel BCE: -ln .75, -ln .5, -ln .75, -ln .25 = ln 4/3, ln 2, ln 4/3, ln 4.
OFF = {"dice": DiceTerm(0.0), "bce": BceTerm(0.0)}  # the default terms switched off

CASES = [
    # sum(p t) = 1.25, sum(p) = 2.25, sum(t) = 2: 1 - 2 * 1.25 / 4.25 = 7/17
    ("dice", {"dice": DiceTerm(1.0)}, 7 / 17),
    ("bce", {"bce": BceTerm(1.0)}, (2 * LN43 + LN2 + LN4) / 4),
    # the two positives' terms doubled
    ("bce pos_weight 2", {"bce": BceTerm(1.0, (2.0,))}, (2 * (LN43 + LN2) + LN43 + LN4) / 4),
    # p_t = [.75, .5, .75, .25]: (1 - p_t)^2 = [1/16, 1/4, 1/16, 9/16] times the BCE terms
    ("focal gamma 2", {"focal": FocalTerm(1.0, 2.0)}, (LN43 / 16 + LN2 / 4 + LN43 / 16 + 9 * LN4 / 16) / 4),
    # positives x 0.25, negatives x 0.75
    ("focal alpha .25", {"focal": FocalTerm(1.0, 2.0, 0.25)},
     (0.25 * (LN43 / 16 + LN2 / 4) + 0.75 * (LN43 / 16 + 9 * LN4 / 16)) / 4),
    # TP = 1.25, FP = .25 + .75 = 1, FN = .25 + .5 = .75: 1 - 1.25 / (1.25 + .3 * 1 + .7 * .75)
    ("tversky", {"tversky": TverskyTerm(1.0, 0.3, 0.7, 1.0)}, 1 - 1.25 / 2.075),
    ("focal-tversky gamma 2", {"tversky": TverskyTerm(1.0, 0.3, 0.7, 2.0)}, (1 - 1.25 / 2.075) ** 2),
    ("tversky .5/.5 is dice", {"tversky": TverskyTerm(1.0, 0.5, 0.5, 1.0)}, 7 / 17),
    # w0 = 0: plain BCE
    ("boundary w0 0", {"boundary_bce": BoundaryBceTerm(1.0, 0.0, 1.0)}, (2 * LN43 + LN2 + LN4) / 4),
    # boundary = pixel 1 (pixel 0 touches only the frame's edge): d = [1, 0, 1, 2], w = 1 + 2 exp(-d^2 / 2)
    ("boundary w0 2 sigma 1", {"boundary_bce": BoundaryBceTerm(1.0, 2.0, 1.0)},
     ((1 + 2 * math.exp(-0.5)) * LN43 + 3 * LN2 + (1 + 2 * math.exp(-0.5)) * LN43 + (1 + 2 * math.exp(-2)) * LN4) / 4),
    # presence, class present: k = 1 of 4 pixels: the top logit ln 3, p = .75: -ln .75
    ("presence top 1 px", {"presence": PresenceTerm(1.0, 0.25)}, LN43),
    # k = round(.4 * 4) = 2: the mean of ln 3, ln 3 is ln 3 again
    ("presence top 2 px", {"presence": PresenceTerm(1.0, 0.4)}, LN43),
    # k = 3: the mean of ln 3, ln 3, 0 = 2/3 ln 3; -ln sigmoid(x) = ln(1 + e^-x) = ln(1 + 3^(-2/3))
    ("presence top 3 px", {"presence": PresenceTerm(1.0, 0.75)}, math.log(1 + 3 ** (-2 / 3))),
    # a fraction below one pixel still takes the top pixel
    ("presence top_fraction tiny", {"presence": PresenceTerm(1.0, 1e-6)}, LN43),
    ("default = dice + bce", {}, 7 / 17 + (2 * LN43 + LN2 + LN4) / 4),
    ("0.5 dice + 2 focal", {"dice": DiceTerm(0.5), "focal": FocalTerm(2.0, 2.0)},
     0.5 * 7 / 17 + 2 * (LN43 / 16 + LN2 / 4 + LN43 / 16 + 9 * LN4 / 16) / 4),
]


@pytest.mark.parametrize("terms, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_loss_values(terms: dict, expected: float) -> None:
    params = LossParams(**(terms if not terms else {**OFF, **terms}))
    logits = LOGITS.clone().requires_grad_(True)
    loss = build_loss(params, 1)(logits, TRUTH)
    assert loss.dtype == torch.float32 and loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


# Two overlapping classes on the same 1 x 4 frame: the gland as above, a lesion t = [0, 1, 0, 0]
# inside it with p = 0.5 everywhere.
TWO_LOGITS = torch.tensor([[LN3, 0.0, -LN3, LN3], [0.0, 0.0, 0.0, 0.0]]).view(1, 2, 1, 4)
TWO_TRUTH = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]).view(1, 2, 1, 4)
NO_LESION = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).view(1, 2, 1, 4)
MULTILABEL_CASES = [
    # lesion: sum(p t) = .5, sum(p) = 2, sum(t) = 1: 1 - 1/3; the mean over the two classes
    ("dice two classes", {"dice": DiceTerm(1.0)}, TWO_TRUTH, (7 / 17 + 2 / 3) / 2),
    # a class without truth pixels in the batch counts 0 (smp's convention), still in the mean
    ("dice absent class", {"dice": DiceTerm(1.0)}, NO_LESION, 7 / 34),
    ("tversky absent class", {"tversky": TverskyTerm(1.0)}, NO_LESION, (1 - 1.25 / 2.075) / 2),
    # gland positives x 2: 2 (ln 4/3 + ln 2) + ln 4/3 + ln 4; lesion positive x 5: 5 ln 2 + 3 ln 2; mean of 8
    ("bce pos_weight per class", {"bce": BceTerm(1.0, (2.0, 5.0))}, TWO_TRUTH,
     (2 * (LN43 + LN2) + LN43 + LN4 + 8 * LN2) / 8),
    # gland present, top pixel ln 3: ln 4/3; lesion absent, top pixel 0 (p = .5) against 0: ln 2; the mean
    ("presence absent class", {"presence": PresenceTerm(1.0, 0.25)}, NO_LESION, (LN43 + LN2) / 2),
    # the lesion present with the same logits: -ln .5 = ln 2 as well
    ("presence present class", {"presence": PresenceTerm(1.0, 0.25)}, TWO_TRUTH, (LN43 + LN2) / 2),
]


@pytest.mark.parametrize("terms, truth, expected", [case[1:] for case in MULTILABEL_CASES],
                         ids=[case[0] for case in MULTILABEL_CASES])
def test_multilabel_loss_values(terms: dict, truth: torch.Tensor, expected: float) -> None:
    assert float(build_loss(LossParams(**{**OFF, **terms}), 2)(TWO_LOGITS, truth)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("blob", [[0], [0, 1, 2], [0, 1, 2, 3, 4, 5, 6, 7]], ids=["1 px", "3 px", "8 px"])
def test_presence_costs_an_invented_blob_the_same_whatever_its_size(blob: list[int]) -> None:
    # one class absent from a 1 x 10 image; the blob's pixels at logit ln 3 (p = .75), the rest far below.
    # Top 1 px: ln 3 against 0: -ln .25 = ln 4 for any blob; the pixel BCE grows with the blob instead.
    logits = torch.full((1, 1, 1, 10), -20.0)
    logits[..., blob] = LN3
    truth = torch.zeros_like(logits)
    presence = build_loss(LossParams(**{**OFF, "presence": PresenceTerm(1.0, 0.1)}), 1)
    bce = build_loss(LossParams(**{**OFF, "bce": BceTerm(1.0)}), 1)
    assert float(presence(logits, truth)) == pytest.approx(LN4, rel=1e-6)
    assert float(bce(logits, truth)) == pytest.approx((len(blob) * LN4 + (10 - len(blob)) * math.log1p(math.exp(-20))) / 10,
                                                      rel=1e-5)


def test_presence_scores_each_image_of_the_batch_apart() -> None:
    # two images: the class in the first (top logit ln 3: ln 4/3), absent from the second (top 0: ln 2)
    logits = torch.tensor([[LN3, 0.0, -LN3, LN3], [0.0, -LN3, -LN3, -LN3]]).view(2, 1, 1, 4)
    truth = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]).view(2, 1, 1, 4)
    loss = build_loss(LossParams(**{**OFF, "presence": PresenceTerm(1.0, 0.25)}), 1)(logits, truth)
    assert float(loss) == pytest.approx((LN43 + LN2) / 2, rel=1e-6)


def test_boundary_distance_is_to_the_inner_contour() -> None:
    square = np.zeros((5, 5), bool)
    square[1:4, 1:4] = True  # the ring of 8 is the boundary; its centre is 1 px in, the frame's corners sqrt 2 out
    r2 = math.sqrt(2)
    np.testing.assert_allclose(boundary_distance(square), [[r2, 1, 1, 1, r2], [1, 0, 0, 0, 1], [1, 0, 1, 0, 1],
                                                           [1, 0, 0, 0, 1], [r2, 1, 1, 1, r2]])
    # the frame's edge is no boundary: only pixel 1 of [1, 1, 0, 0] is
    np.testing.assert_allclose(boundary_distance(np.array([[True, True, False, False]])), [[1, 0, 1, 2]])
    for empty_or_full in (np.zeros((3, 4), bool), np.ones((3, 4), bool)):
        assert np.isinf(boundary_distance(empty_or_full)).all()


def test_boundary_weights() -> None:
    truth = np.zeros((1, 2, 1, 5), bool)
    truth[0, 0, 0, 1:4] = True  # d = [1, 0, 1, 0, 1]; the second class is absent: weight 1
    edge = 1 + 2 * math.exp(-0.5)
    np.testing.assert_allclose(boundary_weights(truth, w0=2.0, sigma=1.0)[0],
                               [[[edge, 3, edge, 3, edge]], [[1, 1, 1, 1, 1]]], rtol=1e-6)
    # sigma 2: d = 1 gives 1 + 2 exp(-1/8)
    assert boundary_weights(truth, w0=2.0, sigma=2.0)[0, 0, 0, 0] == pytest.approx(1 + 2 * math.exp(-1 / 8), rel=1e-6)


def loss_section_error(section: dict) -> str:
    """The ParamsError message of params.yaml's ``train.loss`` set to ``section``."""
    with pytest.raises(ParamsError) as raised:
        build(Params, {"train": {"loss": section}}, "params")
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("section, message", [
    ({"focall": {"weight": 1.0}}, "unknown key(s) in params.train.loss: focall"),
    ({"focal": {"weight": -1.0}}, "params.train.loss.focal: focal.weight must be a number >= 0, got -1.0"),
    ({"dice": {"weight": "a lot"}}, "dice.weight must be a number >= 0, got 'a lot'"),
    ({"dice": {"weight": True}}, "dice.weight must be a number >= 0, got True"),
    ({"bce": {"weight": float("inf")}}, "bce.weight must be a number >= 0, got inf"),
    ({"dice": {"weight": 0}, "bce": {"weight": 0.0}},
     ("params.train.loss: every term's weight is 0 (dice.weight, bce.weight, focal.weight, tversky.weight, "
      "boundary_bce.weight, presence.weight); give at least one a weight > 0")),
    ({"bce": {"pos_weight": [1.0, 0.0]}}, "bce.pos_weight must be a number > 0, got 0.0"),
    ({"bce": {"pos_weight": 3.0}}, "bce.pos_weight must be null or a list of numbers > 0, one per class; got 3.0"),
    ({"focal": {"gamma": -0.5}}, "focal.gamma must be a number >= 0, got -0.5"),
    ({"focal": {"alpha": 1.5}}, "focal.alpha must be null or a number in [0, 1], got 1.5"),
    ({"tversky": {"alpha": 0.0, "beta": 0.0}}, "tversky.alpha and tversky.beta cannot both be 0"),
    ({"tversky": {"gamma": 0}}, "tversky.gamma must be a number > 0, got 0"),
    ({"boundary_bce": {"sigma": 0.0}}, "boundary_bce.sigma must be a number > 0, got 0.0"),
    ({"boundary_bce": {"w0": -1.0}}, "boundary_bce.w0 must be a number >= 0, got -1.0"),
    ({"presence": {"top_fraction": 0}}, "presence.top_fraction must be a number > 0, got 0"),
    ({"presence": {"top_fraction": 1.5}}, "presence.top_fraction must be a number in (0, 1], got 1.5"),
    ({"presence": {"weight": -0.1}}, "presence.weight must be a number >= 0, got -0.1"),
])
def test_bad_loss_params_name_the_key(section: dict, message: str) -> None:
    assert loss_section_error(section).endswith(message)


def test_old_weight_keys_are_refused() -> None:
    with pytest.raises(ParamsError, match=r"unknown key\(s\) in params.train: dice_weight"):
        build(Params, {"train": {"dice_weight": 1.0}}, "params")


def test_loss_section_from_yaml_values() -> None:
    params = build(Params, {"train": {"loss": {"dice": {"weight": 0}, "focal": {"weight": 2, "alpha": 0.25},
                                               "bce": {"pos_weight": [1, 3]}}}}, "params").train.loss
    assert params.weights() == {"bce": 1.0, "focal": 2.0}
    assert params.bce.pos_weight == (1, 3) and params.focal == FocalTerm(2, 2.0, 0.25)
    assert list(build_loss(params, 2).terms) == ["bce", "focal"]  # zero-weight terms are not even built


def test_pos_weight_needs_one_value_per_class() -> None:
    with pytest.raises(ParamsError, match=r"^train.loss.bce.pos_weight has 3 values, but data.classes has 2 classes"):
        build_loss(LossParams(bce=BceTerm(1.0, (1.0, 2.0, 3.0))), 2)
