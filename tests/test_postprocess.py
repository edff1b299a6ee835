"""Post-processing of masks (pipeline/inference/postprocess.py): the functions on hand-drawn masks, its
params, its place in the model contract, and Segmentation.masks applying it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.config import ParamsError, load_params
from pipeline.imaging.geometry import FrameGeometry
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.contract import NO_POSTPROCESS, ContractError, ModelContract, PostprocessSpec
from pipeline.inference.postprocess import fill_holes, largest_component, open_organ, postprocess_masks
from pipeline.inference.predictor import SMALL_GLAND_REMOVED, Segmentation, Segmenter
from tests.conftest import PROJECT_ROOT
from tests.tiny_models import tiny_contract, write_threshold_model

CLASSES = ("gland", "lesion")
FULL = PostprocessSpec(organ="gland", largest_component=True, fill_holes=True, inside_organ=("lesion",), opening=0.0,
                      min_piece=0.0, min_organ=0.0)
DEFAULTS = {"opening": 0.15, "min_piece": 0.001, "min_organ": 0.002}  # params.yaml's


def only(**flags: object) -> PostprocessSpec:
    """The gland spec with only the given steps on."""
    return PostprocessSpec(**{"organ": "gland", "largest_component": False, "fill_holes": False, "inside_organ": (),
                              "opening": 0.0, "min_piece": 0.0, "min_organ": 0.0, **flags})


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


def ellipse(shape: tuple[int, int], centre: tuple[int, int], axes: tuple[int, int], angle: float = 0) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.ellipse(canvas, centre, axes, angle, 0, 360, 1, -1)
    return canvas.astype(bool)


SHAPE = (400, 600)
GLAND_SECTION = ellipse(SHAPE, (280, 200), (160, 80), 20)  # axis ratio 2 (curvature radius 40 px at the tips), tilted
# equivalent diameter 226 px: at 0.15 a disk of radius 34 px, which a knob of radius 30 px cannot hold
KNOB = ellipse(SHAPE, (500, 230), (30, 30))
NECK = np.zeros(SHAPE, bool)
NECK[215:245, 400:480] = True  # 30 px across: a disk of radius 11 px (0.05) goes through it, one of 34 px does not
WITH_KNOB = GLAND_SECTION | NECK | KNOB


def kept(result: np.ndarray, part: np.ndarray) -> float:
    return float((result & part).sum() / part.sum())


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.15])  # radius up to 34 px < the tips' curvature radius
def test_opening_keeps_a_gland_section_as_it_is(fraction):
    assert kept(open_organ(GLAND_SECTION, fraction), GLAND_SECTION) > 0.999  # what rounding to pixels costs
    assert not (open_organ(GLAND_SECTION, fraction) & ~GLAND_SECTION).any()  # never adds a pixel


def test_a_larger_disk_rounds_the_tips_off():
    assert 0.95 < kept(open_organ(GLAND_SECTION, 0.25), GLAND_SECTION) < 0.99  # radius 57 px > 40 px


def test_opening_removes_a_knob_on_a_narrow_neck_and_keeps_the_gland():
    added = WITH_KNOB & ~GLAND_SECTION
    result = open_organ(WITH_KNOB, 0.15)
    assert kept(result, added) < 0.02 and kept(result, GLAND_SECTION) > 0.999
    assert kept(open_organ(WITH_KNOB, 0.05), added) > 0.95  # the small disk goes through the neck


def test_opening_is_alike_at_another_resolution():
    double = cv2.resize(WITH_KNOB.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST).astype(bool)
    small, large = open_organ(WITH_KNOB, 0.15), open_organ(double, 0.15)
    assert large.sum() / (4 * small.sum()) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("given, fraction", [
    (np.zeros((20, 20), bool), 0.15),  # empty
    (WITH_KNOB, 0.0),  # off
    (mask("#####", "#####"), 0.15),  # the radius rounds to 0 px
    (ellipse(SHAPE, (300, 200), (250, 4)), 0.3),  # a sliver the disk cannot enter: kept, not deleted
])
def test_opening_leaves_these_masks_unchanged(given, fraction):
    np.testing.assert_array_equal(open_organ(given, fraction), given)


def test_an_organ_cut_by_the_frame_edge_ends_there():
    cut = GLAND_SECTION[:, 200:]  # the left part beyond the frame: two corners at the edge, rounded
    result = open_organ(cut, 0.15)  # radius 31 px
    lost = cut & ~result
    assert kept(result, cut) > 0.98 and not (result & ~cut).any()
    assert lost[:, :62].sum() >= 0.9 * lost.sum()  # what goes is the corners' at the edge (within 2 radii)


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


def test_postprocess_masks_opens_the_organ_between_its_largest_component_and_its_holes():
    gland = WITH_KNOB | ellipse(SHAPE, (350, 40), (10, 10))  # and a speck apart
    gland[200, 280] = False  # a hole at the centre
    lesion = ellipse(SHAPE, (500, 230), (8, 8))  # in the knob
    result = postprocess_masks(np.stack([gland, lesion]), CLASSES, dataclasses.replace(FULL, opening=0.15))
    np.testing.assert_array_equal(result[0], largest_component(open_organ(largest_component(gland), 0.15))
                                  | (result[0] & ~gland))
    assert result[0][200, 280] and kept(result[0], GLAND_SECTION) > 0.999 and not result[0][40, 350]
    assert not result[1].any()  # the lesion went with the knob it was in


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


# a 20 x 20 gland (400 px) holding lesion pieces of 1, 4 (2 x 2) and 9 (3 x 3 and a diagonal neighbour: one
# 8-connected piece of 10) px
PIECES_GLAND = np.ones((20, 20), bool)
PIECES_LESION = np.zeros((20, 20), bool)
PIECES_LESION[2, 2] = True
PIECES_LESION[2:4, 10:12] = True
PIECES_LESION[10:13, 10:13] = True
PIECES_LESION[13, 13] = True


@pytest.mark.parametrize("min_piece, kept_areas", [
    (0.0, [1, 4, 10]),
    (0.0025, [1, 4, 10]),    # 1 px: not smaller than 1
    (0.005, [4, 10]),        # 2 px
    (0.01, [4, 10]),         # 4 px: the 2 x 2 piece is not smaller
    (0.0101, [10]),
    (0.025, [10]),           # 10 px: the diagonal pixel joins the 3 x 3 piece (8-connected)
    (0.0251, []),
])
@pytest.mark.parametrize("scale", [1, 3])
def test_lesion_pieces_smaller_than_min_piece_of_the_gland_are_dropped(min_piece, kept_areas, scale):
    """Table: pieces by area against min_piece x the gland's area; at 3x the resolution the same pieces go."""
    gland, lesion = (np.kron(mask_, np.ones((scale, scale), bool)) for mask_ in (PIECES_GLAND, PIECES_LESION))
    result = postprocess_masks(np.stack([gland, lesion]), CLASSES, only(inside_organ=("lesion",), min_piece=min_piece))
    np.testing.assert_array_equal(result[0], gland)
    count, _, stats, _ = cv2.connectedComponentsWithStats(result[1].view(np.uint8), connectivity=8)
    assert sorted(stats[1:, cv2.CC_STAT_AREA] // scale ** 2) == kept_areas
    assert not (result[1] & ~lesion).any()  # only removes


def test_min_piece_is_a_fraction_of_the_cleaned_gland_and_leaves_an_empty_lesion_alone():
    gland = np.zeros((20, 20), bool)
    gland[:10, :10] = True  # 100 px: the 4-px piece inside it is 4% of it
    lesion = np.zeros((20, 20), bool)
    lesion[2:4, 2:4] = True
    lesion[15:19, 15:19] = True  # outside the gland: inside_organ removes it first
    spec = only(inside_organ=("lesion",), min_piece=0.04)
    kept = postprocess_masks(np.stack([gland, lesion]), CLASSES, spec)[1]
    assert np.count_nonzero(kept) == 4 and kept[2:4, 2:4].all()
    assert not postprocess_masks(np.stack([gland, lesion]), CLASSES, only(inside_organ=("lesion",),
                                                                         min_piece=0.041))[1].any()
    empty = postprocess_masks(np.stack([gland, np.zeros_like(gland)]), CLASSES, spec)[1]
    assert not empty.any()
    assert not postprocess_masks(np.zeros((2, 20, 20), bool), CLASSES, spec).any()  # no gland: no lesion either


# a 40 x 40 frame (1,600 px) with a 6 x 5 "gland" (30 px) holding a 2 x 2 lesion
SMALL_GLAND = np.zeros((40, 40), bool)
SMALL_GLAND[10:16, 20:25] = True
SMALL_LESION = np.zeros((40, 40), bool)
SMALL_LESION[12:14, 21:23] = True


@pytest.mark.parametrize("min_organ, field_px, kept", [
    (0.0, None, True),
    (0.01875, None, True),       # 30 px is not fewer than 0.01875 x 1,600 = 30
    (0.019, None, False),        # 30.4 px: the gland goes, and its lesion with it
    (0.01, 3000.0, True),        # a field of 3,000 px: 30 px is not fewer than 30
    (0.0101, 3000.0, False),
    (0.002, None, True),         # params.yaml's default: 3.2 px
])
@pytest.mark.parametrize("scale", [1, 3])
def test_an_organ_smaller_than_min_organ_of_the_field_is_dropped_with_its_lesions(min_organ, field_px, kept, scale):
    """Table: the cleaned gland's area against min_organ x the field (H x W by default); at 3x the resolution,
    with the field 9 times larger, the same glands go."""
    gland, lesion = (np.kron(mask_, np.ones((scale, scale), bool)) for mask_ in (SMALL_GLAND, SMALL_LESION))
    field = None if field_px is None else field_px * scale ** 2
    result = postprocess_masks(np.stack([gland, lesion]), CLASSES, only(inside_organ=("lesion",), min_organ=min_organ),
                               field)
    np.testing.assert_array_equal(result[0], gland if kept else np.zeros_like(gland))
    np.testing.assert_array_equal(result[1], lesion if kept else np.zeros_like(lesion))


def test_min_organ_judges_the_cleaned_organ_not_its_raw_pieces():
    """Two pieces of 30 and 20 px: largest_component keeps 30, which 0.019 of 1,600 (30.4) then removes;
    without largest_component the 50 px stay. A 4-px hole filled first counts: 34 px pass 0.02 (32 px)."""
    pieces = SMALL_GLAND.copy()
    pieces[30:34, 30:35] = True
    assert not postprocess_masks(np.stack([pieces, SMALL_LESION]), CLASSES,
                                 only(largest_component=True, min_organ=0.019))[0].any()
    np.testing.assert_array_equal(postprocess_masks(np.stack([pieces, SMALL_LESION]), CLASSES,
                                                    only(min_organ=0.019))[0], pieces)
    ring = np.zeros((40, 40), bool)
    ring[10:16, 20:26] = True  # 36 px, a 2 x 2 hole: 32 px before filling
    ring[12:14, 22:24] = False
    assert postprocess_masks(np.stack([ring, SMALL_LESION]), CLASSES,
                             only(fill_holes=True, min_organ=0.02))[0].sum() == 36
    assert not postprocess_masks(np.stack([ring, SMALL_LESION]), CLASSES, only(min_organ=0.0201))[0].any()


@pytest.mark.parametrize("field_px", [0.0, -1.0, float("nan"), float("inf")])
def test_postprocess_masks_refuses_a_field_that_is_not_a_positive_area(field_px):
    with pytest.raises(ValueError, match="field_px must be a positive number"):
        postprocess_masks(np.stack([SMALL_GLAND, SMALL_LESION]), CLASSES, FULL, field_px)


@pytest.mark.parametrize("geometry, area", [
    (FrameGeometry(8, 5, 0, 0, 8, 5, 16, 16, 10, 0, 3), 8 * 8),          # letterbox: scale 2, the square is 8 x 8
    (FrameGeometry(100, 80, 10, 5, 60, 40, 30, 30, 20, 0, 5), 60 * 60),   # letterbox: scale 0.5, 60 x 60
    (FrameGeometry(100, 80, 10, 5, 60, 40, 30, 30, 30, 0, 0), 60 * 40),   # stretch: the crop itself
])
def test_the_input_square_mapped_back_onto_the_frame(geometry, area):
    assert geometry.input_area_px == pytest.approx(area)


def test_segmentation_masks_judge_min_organ_on_the_input_square_at_the_frame_size():
    """A 100 x 60 frame letterboxed to 20 px: the input square is 100 x 100 = 10,000 frame px. A 10 x 10 gland
    stays at 0.0099 of it (99 px) and goes at 0.0101 (101 px), though it is 1.7% of the frame's own 6,000 px.
    The frame is then flagged as one whose gland was too small; a frame without any gland as before."""
    gland = np.zeros((60, 100), bool)
    gland[20:30, 40:50] = True
    lesion = np.zeros_like(gland)
    lesion[24:26, 44:46] = True
    probabilities = np.stack([gland * 0.9, lesion * 0.9]).astype(np.float32)
    geometry = FrameGeometry(100, 60, 0, 0, 100, 60, 20, 20, 12, 0, 4)
    kept = Segmentation(probabilities, geometry, CLASSES, dataclasses.replace(FULL, min_organ=0.0099))
    np.testing.assert_array_equal(kept.masks(0.5), np.stack([gland, lesion]))
    assert kept.review_reason(0.5) is None
    dropped = Segmentation(probabilities, geometry, CLASSES, dataclasses.replace(FULL, min_organ=0.0101))
    assert not dropped.masks(0.5).any() and dropped.review_reason(0.5) == SMALL_GLAND_REMOVED
    assert postprocess_masks(np.stack([gland, lesion]), CLASSES, dataclasses.replace(FULL, min_organ=0.0101))[0].any()
    assert Segmentation(np.zeros_like(probabilities), geometry, CLASSES,
                        dataclasses.replace(FULL, min_organ=0.0101)).review_reason(0.5) == "no gland found"


@pytest.mark.parametrize("geometry", [
    FrameGeometry(1280, 872, 132, 57, 1045, 683, 256, 256, 167, 0, 44),   # a sample frame's fan crop, letterboxed
    FrameGeometry(800, 600, 0, 0, 800, 600, 256, 256, 256, 0, 0),         # stretched
])
def test_validation_on_the_grid_and_evaluation_on_the_frame_judge_the_same_fraction(geometry):
    """Validation post-processes on the network's grid (the field: size x size), evaluation and the app on the
    frame (the field: the input square mapped back): a gland disk covers the same fraction of both."""
    from pipeline.imaging.geometry import probabilities_to_original_frame

    grid = np.zeros((2, geometry.size, geometry.size), np.float32)
    cv2.circle(grid[0], (128, 128), 10, 1.0, -1)
    on_grid = np.count_nonzero(grid[0] > 0.5) / geometry.size ** 2
    on_frame = np.count_nonzero(probabilities_to_original_frame(grid, geometry)[0] > 0.5) / geometry.input_area_px
    assert on_frame == pytest.approx(on_grid, rel=0.03)
    spec = only(min_organ=0.9 * on_grid)
    assert postprocess_masks(grid > 0.5, CLASSES, spec)[0].any()
    assert postprocess_masks(probabilities_to_original_frame(grid, geometry) > 0.5, CLASSES, spec,
                             geometry.input_area_px)[0].any()
    spec = only(min_organ=1.1 * on_grid)
    assert not postprocess_masks(grid > 0.5, CLASSES, spec)[0].any()
    assert not postprocess_masks(probabilities_to_original_frame(grid, geometry) > 0.5, CLASSES, spec,
                                 geometry.input_area_px)[0].any()


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
        ({"organ": "gland", "opening": -0.1}, r"opening must be a fraction in \[0, 0.5\)"),
        ({"organ": "gland", "opening": 0.5}, "opening must be a fraction"),
        ({"organ": "gland", "opening": "0.1"}, "opening must be a fraction"),
        ({"organ": "gland", "opening": True}, "opening must be a fraction"),
        ({"organ": "gland", "min_piece": -0.001}, r"min_piece must be a fraction in \[0, 0.05\) of the organ's area"),
        ({"organ": "gland", "min_piece": 0.05}, "min_piece must be a fraction"),
        ({"organ": "gland", "min_piece": "0.001"}, "min_piece must be a fraction"),
        ({"organ": "gland", "min_piece": True}, "min_piece must be a fraction"),
        ({"organ": "gland", "min_organ": -0.001}, r"min_organ must be a fraction in \[0, 0.05\) of the network's input"),
        ({"organ": "gland", "min_organ": 0.05}, "min_organ must be a fraction"),
        ({"organ": "gland", "min_organ": "0.002"}, "min_organ must be a fraction"),
        ({"organ": "gland", "min_organ": False}, "min_organ must be a fraction"),
    ],
)
def test_spec_refuses_bad_values(values, message):
    with pytest.raises(ValueError, match=message):
        PostprocessSpec(**values)


def test_spec_is_active_only_when_it_changes_masks():
    assert PostprocessSpec() == dataclasses.replace(FULL, **DEFAULTS) and FULL.active
    assert only(fill_holes=True).active and only(opening=0.1).active and only(min_organ=0.01).active
    assert not only(min_piece=0.01).active  # acts on inside_organ classes only, and there are none
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
                                                                                    inside_organ=("lesion",),
                                                                                    **DEFAULTS)
    assert load_params(write_params(tmp_path, {"fill_holes": False})).inference.postprocess == only(
        largest_component=True, inside_organ=("lesion",), **DEFAULTS)  # keys left out: params.yaml's
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
    assert load_params(PROJECT_ROOT / "params.yaml").inference.postprocess == dataclasses.replace(FULL, **DEFAULTS)


def test_contract_round_trips_the_postprocess():
    contract = ModelContract(**{**tiny_contract().__dict__, "postprocess": FULL})
    loaded = ModelContract.from_json(contract.to_json())
    assert loaded == contract and loaded.postprocess == FULL
    assert json.loads(contract.to_json())["postprocess"] == {
        "organ": "gland", "largest_component": True, "fill_holes": True, "inside_organ": ["lesion"], "opening": 0.0,
        "min_piece": 0.0, "min_organ": 0.0}
    opened = ModelContract(**{**tiny_contract().__dict__, "postprocess": dataclasses.replace(FULL, opening=0.15)})
    assert ModelContract.from_json(opened.to_json()).postprocess.opening == 0.15


@pytest.mark.parametrize("left_out", [("opening",), ("min_piece",), ("min_organ",), ("opening", "min_piece", "min_organ")])
def test_a_contract_from_before_the_opening_min_piece_or_min_organ_loads_without_them(left_out):
    spec = dataclasses.replace(FULL, **DEFAULTS)
    payload = json.loads(ModelContract(**{**tiny_contract().__dict__, "postprocess": spec}).to_json())
    for key in left_out:
        del payload["postprocess"][key]
    # off: the masks it was scored with
    assert ModelContract.from_json(json.dumps(payload)).postprocess == dataclasses.replace(
        spec, **{key: 0.0 for key in left_out})


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
    assert contract.postprocess == only(largest_component=True, **DEFAULTS)  # left out: defaults
    assert ModelContract.from_json(contract.to_json()).postprocess == contract.postprocess
    with pytest.raises(ParamsError, match="'tumour'"):
        build_contract(load_params(write_params(tmp_path, {**spec, "organ": "tumour"})), {}, {})
