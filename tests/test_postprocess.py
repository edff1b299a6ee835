"""Post-processing of masks (pipeline/inference/postprocess.py): the functions on hand-drawn masks, its
params, its place in the model contract, and Segmentation.masks applying it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.config import ParamsError, load_params
from pipeline.imaging.geometry import FrameGeometry
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.contract import NO_POSTPROCESS, ContractError, ModelContract, PostprocessSpec
from pipeline.inference.postprocess import fill_holes, largest_component, postprocess_masks
from pipeline.inference.predictor import Segmentation, Segmenter
from tests.conftest import PROJECT_ROOT
from tests.tiny_models import tiny_contract, write_threshold_model

CLASSES = ("gland", "lesion")
FULL = PostprocessSpec(organ="gland", largest_component=True, fill_holes=True, inside_organ=("lesion",))


def only(**flags: object) -> PostprocessSpec:
    """The gland spec with only the given steps on."""
    return PostprocessSpec(**{"organ": "gland", "largest_component": False, "fill_holes": False, "inside_organ": (),
                              **flags})


def mask(*rows: str) -> np.ndarray:
    """A bool mask drawn with '#' (in) and '.' (out), one string per row."""
    return np.array([[char == "#" for char in row] for row in rows])


TWO_COMPONENTS = mask(
    "##....",
    "##..##",
    "....##",
    "....##",
)
DIAGONAL = mask(
    "#...",
    ".#..",
    "..##",
)
TIE = mask(
    "#..#",
    "....",
)
RING = mask(
    ".....",
    ".###.",
    ".#.#.",
    ".###.",
)
OPEN_RING = mask(  # the gap reaches the border: not a hole
    ".#.#.",
    ".#.#.",
    ".###.",
)
DIAGONAL_GAP = mask(  # the inside touches the outside only through a corner: still a hole
    ".##..",
    "#..#.",
    "#..#.",
    ".##..",
)


@pytest.mark.parametrize(
    "given, expected",
    [
        (TWO_COMPONENTS, mask("......", "....##", "....##", "....##")),
        (DIAGONAL, DIAGONAL),  # 8-connected: one component
        (TIE, mask("#...", "....")),  # equal sizes: the first in raster order
        (np.zeros((2, 3), bool), np.zeros((2, 3), bool)),
    ],
)
def test_largest_component(given, expected):
    np.testing.assert_array_equal(largest_component(given), expected)


@pytest.mark.parametrize(
    "given, expected",
    [
        (RING, mask(".....", ".###.", ".###.", ".###.")),
        (OPEN_RING, OPEN_RING),
        (DIAGONAL_GAP, mask(".##..", "####.", "####.", ".##..")),
        (np.ones((3, 3), bool), np.ones((3, 3), bool)),
        (np.zeros((2, 2), bool), np.zeros((2, 2), bool)),
    ],
)
def test_fill_holes(given, expected):
    np.testing.assert_array_equal(fill_holes(given), expected)


# A gland in two pieces, the big one with a hole, and a lesion half outside the big piece.
GLAND = mask(
    "##......",
    "##.####.",
    "...#..#.",
    "...####.",
    "........",
)
LESION = mask(
    "........",
    "........",
    "....####",
    "....####",
    "........",
)
CLEAN_GLAND = mask(
    "........",
    "...####.",
    "...####.",
    "...####.",
    "........",
)


@pytest.mark.parametrize(
    "spec, gland, lesion",
    [
        (FULL, CLEAN_GLAND, mask("........", "........", "....###.", "....###.", "........")),
        (only(largest_component=True), mask(
            "........", "...####.", "...#..#.", "...####.", "........"), LESION),
        (only(fill_holes=True), mask(
            "##......", "##.####.", "...####.", "...####.", "........"), LESION),
        # only the lesion's pixels inside the (uncleaned) gland stay: the hole's pixel (2, 4) goes too
        (only(inside_organ=("lesion",)), GLAND, mask(
            "........", "........", "......#.", "....###.", "........")),
        (NO_POSTPROCESS, GLAND, LESION),
        (PostprocessSpec(organ=None), GLAND, LESION),  # organ null: off, whatever the other keys say
    ],
)
def test_postprocess_masks(spec, gland, lesion):
    given = np.stack([GLAND, LESION])
    result = postprocess_masks(given, CLASSES, spec)
    np.testing.assert_array_equal(result[0], gland)
    np.testing.assert_array_equal(result[1], lesion)
    np.testing.assert_array_equal(given, np.stack([GLAND, LESION]))  # the input is left as it was


def test_postprocess_masks_keeps_classes_it_does_not_name_and_refuses_others():
    three = np.stack([GLAND, LESION, GLAND | LESION])  # a third class, outside the gland in part
    result = postprocess_masks(three, ("gland", "lesion", "calcification"), FULL)
    np.testing.assert_array_equal(result[2], GLAND | LESION)
    with pytest.raises(ValueError, match="'gland'"):
        postprocess_masks(np.stack([GLAND, LESION]), ("prostate", "lesion"), FULL)
    with pytest.raises(ValueError, match="shape"):
        postprocess_masks(GLAND, CLASSES, FULL)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"organ": "gland", "inside_organ": ("gland",)}, "organ itself"),
        ({"organ": "gland", "inside_organ": ("lesion", "lesion")}, "distinct"),
        ({"organ": "gland", "inside_organ": "lesion"}, "list"),
        ({"organ": "gland", "largest_component": "yes"}, "true or false"),
        ({"organ": ""}, "class name or null"),
    ],
)
def test_spec_refuses_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        PostprocessSpec(**values)


def test_spec_is_active_only_when_it_changes_masks():
    assert PostprocessSpec() == FULL and FULL.active and only(fill_holes=True).active
    assert not NO_POSTPROCESS.active and not only().active
    off = PostprocessSpec(organ=None)
    assert not off.active and off.unknown_classes(("prostate",)) == []  # organ null: off, whatever the rest says


def write_params(tmp_path: Path, postprocess: object) -> Path:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["inference"]["postprocess"] = postprocess
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_params_read_and_check_the_postprocess(tmp_path: Path):
    spec = {"organ": "gland", "largest_component": False, "fill_holes": True, "inside_organ": ["lesion"]}
    assert load_params(write_params(tmp_path, spec)).inference.postprocess == only(fill_holes=True,
                                                                                    inside_organ=("lesion",))
    assert load_params(write_params(tmp_path, {"fill_holes": False})).inference.postprocess == only(
        largest_component=True, inside_organ=("lesion",))  # keys left out take the defaults, params.yaml's
    params = load_params(write_params(tmp_path, {**spec, "inside_organ": ["calcification"]}))  # pull does not care
    with pytest.raises(ParamsError, match=r"inference.postprocess names 'calcification', which is not in "
                                          r"data.classes \['gland', 'lesion'\]; set inference.postprocess"):
        params.inference.check_classes(params.data.classes)  # what train, evaluate and export check first
    params.inference.check_classes(("gland", "lesion", "calcification"))
    load_params(write_params(tmp_path, {**spec, "organ": None})).inference.check_classes(("prostate",))  # off
    with pytest.raises(ParamsError, match="unknown key.*holes"):
        load_params(write_params(tmp_path, {**spec, "holes": True}))
    assert not load_params(write_params(tmp_path, {**spec, "organ": None})).inference.postprocess.active


def test_the_project_params_post_process_the_gland_and_lesion():
    assert load_params(PROJECT_ROOT / "params.yaml").inference.postprocess == FULL


def test_contract_round_trips_the_postprocess():
    contract = ModelContract(**{**tiny_contract().__dict__, "postprocess": FULL})
    loaded = ModelContract.from_json(contract.to_json())
    assert loaded == contract and loaded.postprocess == FULL
    assert json.loads(contract.to_json())["postprocess"] == {
        "organ": "gland", "largest_component": True, "fill_holes": True, "inside_organ": ["lesion"]}


def test_a_contract_without_postprocess_loads_with_it_off():
    payload = json.loads(tiny_contract().to_json())
    del payload["postprocess"]
    assert ModelContract.from_json(json.dumps(payload)).postprocess == NO_POSTPROCESS


@pytest.mark.parametrize(
    "postprocess, message",
    [
        ({"organ": "prostate", "largest_component": True}, "post-processing names 'prostate'"),
        ({"organ": "gland", "bogus": 1}, "malformed"),
        ({"organ": "gland", "fill_holes": "yes"}, "malformed"),
    ],
)
def test_a_bad_contract_postprocess_is_refused(postprocess, message):
    payload = json.loads(tiny_contract().to_json())
    payload["postprocess"] = postprocess
    with pytest.raises(ContractError, match=message):
        ModelContract.from_json(json.dumps(payload))


def test_segmentation_masks_threshold_then_postprocess():
    probabilities = np.stack([GLAND * 0.9 + 0.2 * ~GLAND, LESION * 0.6]).astype(np.float32)
    geometry = FrameGeometry(8, 5, 0, 0, 8, 5, 16, 16, 10, 0, 3)  # 8 x 5 frame, whole, letterboxed to 16 px
    cleaned = Segmentation(probabilities, geometry, CLASSES, FULL).masks(0.5)
    np.testing.assert_array_equal(cleaned, postprocess_masks(np.stack([GLAND, LESION]), CLASSES, FULL))
    assert not Segmentation(probabilities, geometry, CLASSES, FULL).masks(0.6)[1].any()  # strictly above
    np.testing.assert_array_equal(Segmentation(probabilities, geometry, CLASSES).masks(0.5), np.stack([GLAND, LESION]))


def frame_with_two_bright_parts() -> np.ndarray:
    """A 100 x 160 black frame: a bright 60 x 80 block with a dark 20 x 20 hole, and a small bright block apart."""
    frame = np.zeros((100, 160), np.uint8)
    frame[20:80, 20:100] = 200
    frame[40:60, 50:70] = 0
    frame[30:50, 120:150] = 200
    return frame


def test_the_model_contract_postprocess_reaches_segment_masks(tmp_path: Path):
    """The tiny model's gland is 'bright', its lesion 'dark'. With the contract's post-processing the small
    block leaves the gland, the hole joins it, and the lesion is only the dark hole inside the gland."""
    spec = PreprocessSpec(crop="none", size=64, filter=FilterSpec(method="none"))
    plain = Segmenter(write_threshold_model(tmp_path / "plain.onnx", tiny_contract(spec)))
    cleaned = Segmenter(write_threshold_model(tmp_path / "clean.onnx",
                                              ModelContract(**{**tiny_contract(spec).__dict__, "postprocess": FULL})))
    assert plain.contract.postprocess == NO_POSTPROCESS and cleaned.contract.postprocess == FULL
    frame = frame_with_two_bright_parts()
    before, after = plain.segment(frame).masks(0.5), cleaned.segment(frame).masks(0.5)
    assert before[0, 35:45, 125:145].all() and not after[0, 30:50, 120:150].any()
    assert not before[0, 45:55, 55:65].any() and after[0, 45:55, 55:65].all()
    assert before[1, :10, :10].all() and not after[1, :10, :10].any()
    assert after[1, 45:55, 55:65].all() and not (after[1] & ~after[0]).any()
    np.testing.assert_array_equal(after, postprocess_masks(before, CLASSES, FULL))


def test_the_export_puts_the_params_postprocess_in_the_contract(tmp_path: Path):
    from pipeline.training.onnx_export import build_contract  # torch: imported here, the rest of the file is torch-free

    spec = {"organ": "gland", "largest_component": True, "fill_holes": False, "inside_organ": []}
    params = load_params(write_params(tmp_path, spec))
    contract = build_contract(params, {"test": {"gland": {"dice": 0.9}}}, {"dataset_version": "abc"})
    assert contract.postprocess == only(largest_component=True)
    assert ModelContract.from_json(contract.to_json()).postprocess == contract.postprocess
    with pytest.raises(ParamsError, match="'tumour'"):
        build_contract(load_params(write_params(tmp_path, {**spec, "organ": "tumour"})), {}, {})
