"""Test-time flips (``inference.flips``): probabilities averaged over mirror images, alike in every place that infers.

The hand values come from a "network" whose output depends on where a pixel is (a ramp), so
a mirror image changes its answer and the average is known exactly: on a frame white in its
left half (x = 1 there, 0 elsewhere), channel 0 is x * column / (S - 1) and channel 1 is
x * row / (S - 1). Mirrored left-right and back, channel 0 becomes x * (1 - column / (S - 1)),
so the mean of the two is x / 2; channel 1 does not change. Up-down, the same for channel 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from pipeline.config import InferenceParams, ParamsError, load_params
from pipeline.evaluation.scoring import frame_rows, summarise
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.contract import NO_POSTPROCESS, ContractError, ModelContract, PostprocessSpec
from pipeline.inference.flips import FLIPS, check_flips, flip_axes, mirrored_mean
from pipeline.inference.postprocess import postprocess_masks
from pipeline.inference.predictor import Segmenter
from pipeline.planes import PLANES
from pipeline.training.predict import mirrored_outputs, predict_outputs
from pipeline.training.validation import validate
from tests.conftest import PROJECT_ROOT
from tests.tiny_models import tiny_contract, write_ramp_model

SIZE = 32
RAMP = np.linspace(0.0, 1.0, SIZE, dtype=np.float32)
LEFT_WHITE = np.zeros((SIZE, SIZE), np.uint8)
LEFT_WHITE[:, : SIZE // 2] = 255
X = LEFT_WHITE.astype(np.float32) / 255  # the network's input (identity normalisation)
COLUMN_RAMP, ROW_RAMP = np.tile(RAMP, (SIZE, 1)), np.tile(RAMP[:, None], (1, SIZE))


def softmax_plane(mean: float) -> np.ndarray:
    """The ramp model's plane output for a frame whose channel 0 averages ``mean``."""
    logits = np.array([4.0 * mean, 0.0])
    return np.exp(logits) / np.exp(logits).sum()


PLANE_AS_IS = softmax_plane(float((X * COLUMN_RAMP).mean()))
PLANE_MIRRORED = softmax_plane(float((X[:, ::-1] * COLUMN_RAMP).mean()))
# flips -> (channel 0, channel 1, plane probabilities) of the left-white frame
EXPECTED = {
    "none": (X * COLUMN_RAMP, X * ROW_RAMP, PLANE_AS_IS),
    "horizontal": (X / 2, X * ROW_RAMP, (PLANE_AS_IS + PLANE_MIRRORED) / 2),
    "vertical": (X * COLUMN_RAMP, X / 2, PLANE_AS_IS),
    "both": (X / 2, X / 2, (PLANE_AS_IS + PLANE_MIRRORED) / 2),
}


def ramp_network(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ramp model in NumPy: (N, S, S) uint8 -> (N, 2, S, S) probabilities, (N, 2) plane probabilities."""
    x = images.astype(np.float32) / 255
    probabilities = np.stack([x * COLUMN_RAMP, x * ROW_RAMP], axis=1)
    planes = np.stack([softmax_plane(float(mean)) for mean in probabilities[:, 0].mean(axis=(1, 2))])
    return probabilities, planes.astype(np.float32)


@pytest.mark.parametrize("flips", list(EXPECTED))
def test_mirrored_mean_of_a_network_that_is_not_mirror_symmetric(flips: str):
    calls = []

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(images.copy())
        return ramp_network(images)

    probabilities, planes = mirrored_mean(run, LEFT_WHITE[None], flips)
    channel_0, channel_1, plane = EXPECTED[flips]
    np.testing.assert_allclose(probabilities[0, 0], channel_0, atol=1e-6)
    np.testing.assert_allclose(probabilities[0, 1], channel_1, atol=1e-6)
    np.testing.assert_allclose(planes[0], plane, atol=1e-6)
    assert probabilities.dtype == planes.dtype == np.float32
    assert len(calls) == len(FLIPS[flips])  # one network pass per mirror image
    np.testing.assert_array_equal(calls[0], LEFT_WHITE[None])  # the frame itself first, unchanged


def test_none_passes_the_network_output_through_and_no_plane_output_stays_none():
    probabilities = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    same, planes = mirrored_mean(lambda images: (probabilities, None), np.zeros((2, 4, 4), np.uint8), "none")
    assert same is probabilities and planes is None
    averaged, planes = mirrored_mean(lambda images: (probabilities, None), np.zeros((2, 4, 4), np.uint8), "both")
    assert planes is None
    np.testing.assert_allclose(averaged, (probabilities + probabilities[..., ::-1] + probabilities[..., ::-1, :]
                                          + probabilities[..., ::-1, ::-1]) / 4, atol=1e-7)


@pytest.mark.parametrize("value", ["diagonal", "", None, 2, "Both"])
def test_flips_must_be_a_known_choice(value: object):
    with pytest.raises(ValueError, match=r"inference\.flips must be one of none, horizontal, vertical, both"):
        check_flips(value, "inference.flips")
    with pytest.raises(ParamsError, match=r"inference\.flips must be one of"):
        InferenceParams(flips=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be one of"):
        flip_axes(value)  # type: ignore[arg-type]


def test_params_yaml_reads_flips(tmp_path: Path):
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    assert load_params(PROJECT_ROOT / "params.yaml").inference.flips == params["inference"]["flips"] == "none"
    params["inference"]["flips"] = "both"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert load_params(tmp_path / "params.yaml").inference.flips == "both"
    params["inference"]["flips"] = "sideways"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"inference\.flips must be one of .*'sideways'"):
        load_params(tmp_path / "params.yaml")


def test_the_contract_keeps_flips_and_older_contracts_load_without():
    contract = ModelContract(**{**tiny_contract().__dict__, "flips": "both"})
    assert ModelContract.from_json(contract.to_json()).flips == "both"
    payload = json.loads(contract.to_json())
    del payload["flips"]
    assert ModelContract.from_json(json.dumps(payload)).flips == "none"
    payload["flips"] = "diagonal"
    with pytest.raises(ContractError, match="the model's flips must be one of"):
        ModelContract.from_json(json.dumps(payload))


def test_the_export_puts_the_params_flips_in_the_contract(tmp_path: Path):
    from pipeline.training.onnx_export import build_contract

    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["inference"]["flips"] = "horizontal"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    contract = build_contract(load_params(tmp_path / "params.yaml"), {}, {"dataset_version": "abc"})
    assert contract.flips == "horizontal" == ModelContract.from_json(contract.to_json()).flips


@pytest.mark.parametrize("flips", list(EXPECTED))
def test_the_segmenter_averages_the_contracts_flips(tmp_path: Path, flips: str):
    """ONNX Runtime on the ramp model: segment (the app, the service, trus segment) and predict_processed
    average over the contract's mirrors; run_processed stays one pass of the network."""
    spec = PreprocessSpec(crop="none", size=SIZE, resize="letterbox", interpolation="area",
                          filter=FilterSpec(method="none"))
    contract = ModelContract(**{**tiny_contract(spec, plane_classes=PLANES).__dict__, "flips": flips,
                                "postprocess": NO_POSTPROCESS})
    segmenter = Segmenter(write_ramp_model(tmp_path / "ramp.onnx", contract), precision="fp32")
    channel_0, channel_1, plane = EXPECTED[flips]
    segmentation = segmenter.segment(LEFT_WHITE)
    np.testing.assert_allclose(segmentation.probabilities[0], channel_0, atol=1e-6)
    np.testing.assert_allclose(segmentation.probabilities[1], channel_1, atol=1e-6)
    np.testing.assert_allclose([segmentation.plane_probabilities[name] for name in PLANES], plane, atol=1e-6)
    np.testing.assert_allclose(segmenter.predict_processed(LEFT_WHITE[None])[0], np.stack([channel_0, channel_1]),
                               atol=1e-6)
    once, _ = segmenter.run_processed(LEFT_WHITE[None])
    np.testing.assert_allclose(once[0], np.stack(EXPECTED["none"][:2]), atol=1e-6)
    assert (segmentation.masks(0.4)[0] == (channel_0 > 0.4)).all()  # the masks come from the mean


class Lopsided(nn.Module):
    """A small network that is not mirror-symmetric: an asymmetric convolution, a plane head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.plane = nn.Linear(2, 2)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.conv(images) * 3
        return logits, self.plane(logits[:, :, :, : images.shape[-1] // 3].mean(dim=(2, 3)))


@pytest.mark.parametrize("flips", list(FLIPS))
def test_torch_inference_averages_as_the_runtime_does(flips: str):
    """predict_outputs (evaluation, the review calibration) gives what mirrored_mean gives around one pass."""
    model = Lopsided().eval()
    images = np.random.default_rng(1).integers(0, 256, (3, 16, 16), dtype=np.uint8)
    probabilities, planes = predict_outputs(model, images, 0.4, 0.25, batch_size=2, flips=flips)
    expected, expected_planes = mirrored_mean(lambda batch: predict_outputs(model, batch, 0.4, 0.25), images, flips)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(planes, expected_planes, atol=1e-6)
    if flips != "none":  # the mirrors did change the answer: the test can tell
        single, _ = predict_outputs(model, images, 0.4, 0.25)
        assert np.abs(probabilities - single).max() > 0.05


def test_mirrored_outputs_without_a_plane_head():
    model = nn.Conv2d(1, 1, 3, padding=1).eval()
    images = torch.rand(2, 1, 8, 8)
    probabilities, planes = mirrored_outputs(model, images, "horizontal")
    with torch.no_grad():
        expected = (torch.sigmoid(model(images)) + torch.sigmoid(model(images.flip(-1))).flip(-1)) / 2
    assert planes is None
    torch.testing.assert_close(probabilities, expected)


class ColumnLogits(nn.Module):
    """Logits that depend on the column only: +3 on the columns in ``positive``, -5 elsewhere (both classes)."""

    def __init__(self, positive: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("logits", torch.from_numpy(np.where(positive, 3.0, -5.0).astype(np.float32)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(images.shape[0], 2, *images.shape[-2:]) + 0 * images


@pytest.mark.parametrize("flips", ["none", "horizontal", "both"])
def test_validation_scores_the_masks_of_the_flipped_mean(flips: str):
    """Training's validation (checkpoint choice, schedule) scores the masks inference will make with flips:
    here a mask on columns 0-2 and 6, whose left-right mirror keeps only where both agree."""
    positive = np.zeros((8, 8), bool)
    positive[1:7, [0, 1, 2, 6]] = True
    model = ColumnLogits(positive)
    truth = np.zeros((2, 2, 8, 8), bool)
    truth[:, 0, 1:7, 0:3] = True  # gland: columns 0-2
    truth[0, 1, 1:7, 6] = True  # lesion on frame 0 only
    images = torch.zeros(2, 1, 8, 8)
    loader = [(images, torch.from_numpy(truth.astype(np.float32)), torch.full((2,), -1))]
    inference = InferenceParams(threshold=0.5, postprocess=NO_POSTPROCESS, flips=flips)
    _, summaries, _ = validate(model, loader, nn.BCEWithLogitsLoss(), torch.device("cpu"), None,
                               ("gland", "lesion"), inference)
    logits = model.logits.numpy()
    # the logits ignore the image, so each mirrored pass answers the same, then is mirrored back
    mirrored = [np.flip(1 / (1 + np.exp(-logits)), axes) for axes in flip_axes(flips)]
    predicted = np.stack([np.mean(mirrored, axis=0) > 0.5] * 2)  # (2, 8, 8): both classes alike
    rows = []
    for index in range(2):
        rows += frame_rows(f"f{index}", "P1", postprocess_masks(predicted, ("gland", "lesion"), NO_POSTPROCESS),
                           truth[index], ("gland", "lesion"), None)
    reported = summarise(pd.DataFrame(rows), ("gland", "lesion"))
    for name, summary in summaries.items():
        assert {key: reported[name][key] for key in summary.as_dict()} == pytest.approx(summary.as_dict())
    # gland: 18 px true (columns 0-2); drawn: 24 px (columns 0-2, 6), 12 px with the mirrors (columns 1 and 6)
    expected_gland = {"none": 2 * 18 / (24 + 18), "horizontal": 2 * 6 / (12 + 18), "both": 2 * 6 / (12 + 18)}[flips]
    assert summaries["gland"].dice == pytest.approx(expected_gland)


def test_a_params_file_written_before_flips_loads_without_them(tmp_path: Path):
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["inference"]["flips"] = "both"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert load_params(tmp_path / "params.yaml").inference.flips == "both"
    del params["inference"]["flips"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    inference = load_params(tmp_path / "params.yaml").inference
    assert inference.flips == "none" and inference.postprocess == PostprocessSpec()
