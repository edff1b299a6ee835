"""Clinicians' corrected masks -> COCO polygons -> the project's own rasteriser and COCO ingest, and the folder on disk.

No network here (``trus upload-corrections`` is tested in ``test_upload_corrections.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import pipeline.corrections.coco as corrections_coco
from pipeline.corrections import (ANNOTATIONS_FILE, CorrectedFrame, CorrectionsError, frame_document_path, keyhole_ring,
                                  mask_parts, mask_to_rings, read_corrections, write_corrections)
from pipeline.corrections.polygons import DEFAULT_TOLERANCE_PX
from pipeline.files.output_folder import MARKER, OutputFolderError
from pipeline.imaging.polygons import rasterise_polygon
from pipeline.ingest import coco as ingest_coco
from pipeline.ingest.coco import read_coco_export

CLASSES = ("gland", "lesion")
FRAME_HEIGHT, FRAME_WIDTH = 872, 1280  # the synthetic scanner's frame (pipeline.synthetic SampleSpec)


def shape(rows: list[str]) -> np.ndarray:
    """A mask drawn in text: ``#`` set, ``.`` clear."""
    return np.array([[char == "#" for char in row] for row in rows])


def ellipse(height: int, width: int, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width].astype(np.float64)
    c, s = np.cos(angle), np.sin(angle)
    u, v = (xx - cx) * c + (yy - cy) * s, -(xx - cx) * s + (yy - cy) * c
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1


def gland_with_hole_and_blob(height: int = FRAME_HEIGHT, width: int = FRAME_WIDTH) -> np.ndarray:
    """A realistic corrected gland: a tilted ellipse (about 400 x 300 px) with a hole, plus a second blob."""
    gland = ellipse(height, width, 0.5 * width, 0.55 * height, 0.16 * width, 0.17 * height, 0.3)
    gland &= ~ellipse(height, width, 0.47 * width, 0.52 * height, 0.03 * width, 0.04 * height, -0.5)
    return gland | ellipse(height, width, 0.8 * width, 0.25 * height, 0.04 * width, 0.07 * height)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


SIMPLE_SHAPES = {
    "one pixel": (["...", ".#.", "..."], 1, 0),
    "corner pixel": (["#..", "...", "..."], 1, 0),
    "full frame": (["###", "###"], 1, 0),
    "horizontal line": (["......", ".####.", "......"], 1, 0),
    "vertical line at the edge": (["#.", "#.", "#.", "#."], 1, 0),
    "diagonal line": (["#...", ".#..", "..#.", "...#"], 1, 0),
    "rectangle": (["......", ".####.", ".####.", "......"], 1, 0),
    "L shape": (["#...", "#...", "####"], 1, 0),
    "square ring": (["#####", "#...#", "#...#", "#####"], 1, 1),
    "ring with an island": (["#######", "#.....#", "#..#..#", "#.....#", "#######"], 2, 1),
    "two parts, one with a hole": (["####...", "#..#...", "####.##", "......#"], 2, 1),
    "three holes": (["#######", "#.#.#.#", "#######"], 1, 3),
    "hole touching the outline diagonally": (["####", "#.##", "##.#", "####"], 1, 2),
    "checkerboard": (["#.#.", ".#.#", "#.#.", ".#.#"], 1, 2),  # 8-connected: one part; 2 enclosed pixels
    "one-pixel walls": (["#####", "#.#.#", "#####"], 1, 2),
}


@pytest.mark.parametrize("tolerance", [0.0, DEFAULT_TOLERANCE_PX, 1.0])
@pytest.mark.parametrize("name", SIMPLE_SHAPES)
def test_simple_shapes_come_back_exactly_through_the_project_rasteriser(name, tolerance):
    rows, n_parts, n_holes = SIMPLE_SHAPES[name]
    mask = shape(rows)
    parts = mask_parts(mask, tolerance)
    assert len(parts) == n_parts and sum(len(part.holes) for part in parts) == n_holes
    assert sum(part.pixels for part in parts) == mask.sum()
    if tolerance <= DEFAULT_TOLERANCE_PX or name in ("full frame", "rectangle", "square ring"):  # corners stay
        np.testing.assert_array_equal(rasterise_polygon(mask_to_rings(mask, tolerance), mask.shape), mask)


def test_a_part_with_a_hole_is_one_keyhole_ring_whose_outline_and_hole_run_opposite_ways():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 3:15] = True
    mask[5:8, 6:10] = False
    (part,) = mask_parts(mask)
    (hole,) = part.holes

    def signed_area(ring: np.ndarray) -> float:
        x, y = ring[:, 0], ring[:, 1]
        return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2

    assert signed_area(part.outline) < 0 < signed_area(hole)
    # every vertex 0.25 px inside the part's pixel edges: columns 3..14, hole columns 6..9
    assert part.outline[:, 0].min() == 2.75 and part.outline[:, 0].max() == 14.25
    assert hole[:, 0].min() == 5.25 and hole[:, 0].max() == 9.75
    assert part.box == (2.5, 1.5, 12.0, 10.0) and part.pixels == 10 * 12 - 3 * 4
    ring = keyhole_ring(part)
    assert len(ring) == len(part.outline) + len(hole) + 2  # the bridge: the hole's first vertex and the outline's again
    np.testing.assert_array_equal(rasterise_polygon([ring], mask.shape), mask)
    # a separate ring for the hole would be filled, not cut out (rings are joined): why holes are spliced in
    filled = np.zeros_like(mask)
    filled[2:12, 3:15] = True
    np.testing.assert_array_equal(rasterise_polygon([part.outline, hole], mask.shape), filled)


def test_random_masks_round_trip_exactly_at_the_default_tolerance():
    rng = np.random.default_rng(20240611)
    for trial in range(150):
        height, width = (int(v) for v in rng.integers(2, 48, 2))
        noise = rng.random((height, width))
        mask = cv2.GaussianBlur(noise, (0, 0), 1.5) > 0.5 if trial % 2 else noise < rng.uniform(0.2, 0.8)
        back = rasterise_polygon(mask_to_rings(mask), mask.shape)
        assert np.array_equal(back, mask), f"trial {trial}: {int((back != mask).sum())} px differ"


@pytest.mark.parametrize("tolerance, min_iou, max_vertices", [
    (0.0, 1.0, None),
    (DEFAULT_TOLERANCE_PX, 1.0, None),
    (0.5, 0.99, 1200),
    (1.0, 0.99, 200),
])
def test_a_smooth_gland_at_frame_size(tolerance, min_iou, max_vertices):
    mask = gland_with_hole_and_blob()
    rings = mask_to_rings(mask, tolerance)
    assert len(rings) == 2  # the gland (its hole spliced in) and the blob
    assert iou(rasterise_polygon(rings, mask.shape), mask) >= min_iou
    if max_vertices is not None:
        assert sum(len(ring) for ring in rings) <= max_vertices
    if tolerance == DEFAULT_TOLERANCE_PX:  # fewer vertices than the traced outline, for free
        assert sum(map(len, rings)) < 0.8 * sum(map(len, mask_to_rings(mask, 0.0)))


def test_an_empty_mask_has_no_polygon_and_an_empty_frame_no_annotation():
    assert mask_parts(np.zeros((10, 12), bool)) == [] and mask_to_rings(np.zeros((10, 12), bool)) == []
    frame = CorrectedFrame("P001_F01.png", np.zeros((2, 10, 12), bool), CLASSES)
    assert corrections_coco.frame_annotations(frame, image_id=0) == []


@pytest.mark.parametrize("masks, classes, file_name, message", [
    (np.zeros((10, 12), bool), ("gland",), "a.png", "masks must be (classes, height, width)"),
    (np.zeros((2, 10, 12), np.float32), CLASSES, "a.png", "masks must be bool"),
    (np.full((2, 10, 12), 2, np.uint8), CLASSES, "a.png", "masks must be bool"),
    (np.zeros((1, 10, 12), bool), CLASSES, "a.png", "1 mask(s) but 2 class name(s)"),
    (np.zeros((2, 10, 12), bool), ("gland", "gland"), "a.png", "distinct non-empty"),
    (np.zeros((2, 10, 12), bool), CLASSES, "../a.png", "not a plain image file name"),
    (np.zeros((2, 10, 12), bool), CLASSES, ".hidden.png", "not a plain image file name"),
    (np.zeros((2, 10, 12), bool), CLASSES, "", "non-empty text"),
])
def test_a_corrected_frame_is_checked(masks, classes, file_name, message):
    with pytest.raises(CorrectionsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CorrectedFrame(file_name, masks, classes)


def test_zero_one_integer_masks_become_bool():
    frame = CorrectedFrame("a.png", np.ones((1, 3, 4), np.uint8), ("gland",))
    assert frame.masks.dtype == bool and (frame.height, frame.width) == (3, 4)


def corrected_frames() -> list[CorrectedFrame]:
    """Three frames: a realistic gland with a hole and a blob plus a lesion; a small one; one with nothing."""
    gland = gland_with_hole_and_blob()
    lesion = ellipse(FRAME_HEIGHT, FRAME_WIDTH, 0.55 * FRAME_WIDTH, 0.6 * FRAME_HEIGHT, 30, 22) & gland
    small = np.zeros((2, 192, 256), bool)
    small[0, 40:120, 50:200] = True
    small[1, 60:80, 90:110] = True
    return [CorrectedFrame("P001_F01_transverse.png", np.stack([gland, lesion]), CLASSES),
            CorrectedFrame("P002_F03_sagittal.png", small, CLASSES),
            CorrectedFrame("P003_F02_transverse.png", np.zeros((2, 192, 256), bool), CLASSES)]


def test_write_then_read_gives_the_same_masks_and_the_roboflow_coco_layout(tmp_path):
    frames = corrected_frames()
    out = tmp_path / "corrections"
    assert write_corrections(out, frames) == out
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted([MARKER, ANNOTATIONS_FILE, *(f"frames/{f.file_name}.coco.json" for f in frames)])
    assert [p.name for p in tmp_path.iterdir()] == ["corrections"]  # no staging folder left
    back = read_corrections(out)
    assert [f.file_name for f in back] == [f.file_name for f in frames]
    for read, written in zip(back, frames):
        assert read.classes == CLASSES and np.array_equal(read.masks, written.masks)

    whole = json.loads((out / ANNOTATIONS_FILE).read_text())
    assert [(c["id"], c["name"]) for c in whole["categories"]] == [(0, "trus-structures"), (1, "gland"), (2, "lesion")]
    assert whole["categories"][0]["supercategory"] == "none"
    assert whole["images"] == [{"id": 0, "file_name": "P001_F01_transverse.png", "width": 1280, "height": 872},
                               {"id": 1, "file_name": "P002_F03_sagittal.png", "width": 256, "height": 192},
                               {"id": 2, "file_name": "P003_F02_transverse.png", "width": 256, "height": 192}]
    per_image = [(a["image_id"], a["category_id"]) for a in whole["annotations"]]
    assert per_image == [(0, 1), (0, 1), (0, 2), (1, 1), (1, 2)]  # gland: 2 parts; nothing for the empty frame
    assert [a["id"] for a in whole["annotations"]] == list(range(5))
    small = [a for a in whole["annotations"] if a["image_id"] == 1]
    assert small[0]["bbox"] == [49.5, 39.5, 150.0, 80.0] and small[0]["area"] == 150 * 80
    assert small[1]["bbox"] == [89.5, 59.5, 20.0, 20.0] and small[1]["area"] == 400
    assert all(a["iscrowd"] == 0 and len(a["segmentation"]) == 1 for a in whole["annotations"])
    assert small[0]["segmentation"] == [[49.75, 39.75, 49.75, 119.25, 199.25, 119.25, 199.25, 39.75]]

    single = json.loads(frame_document_path(out, "P002_F03_sagittal.png").read_text())
    assert single["images"] == [whole["images"][1]] and single["categories"] == whole["categories"]
    assert [a["segmentation"] for a in single["annotations"]] == [a["segmentation"] for a in small]
    empty = json.loads(frame_document_path(out, "P003_F02_transverse.png").read_text())
    assert empty["annotations"] == [corrections_coco.EMPTY_PLACEHOLDER]  # the client's own placeholder


def test_the_projects_coco_ingest_reads_the_corrections_back_exactly(tmp_path):
    """The corrections file as a split of an export (images beside it): the ingest's masks are the corrections."""
    frames = corrected_frames()
    write_corrections(tmp_path / "corrections", frames)
    split = tmp_path / "export" / "train"
    split.mkdir(parents=True)
    (split / ingest_coco.ANNOTATIONS_FILE).write_bytes((tmp_path / "corrections" / ANNOTATIONS_FILE).read_bytes())
    for frame in frames:
        cv2.imwrite(str(split / frame.file_name), np.zeros((frame.height, frame.width), np.uint8))
    contents = read_coco_export(tmp_path / "export", CLASSES)
    assert contents.findings == ()
    by_name = {frame.image_path.name: frame for frame in contents.frames}
    for frame in frames:
        np.testing.assert_array_equal(by_name[frame.file_name].masks(len(CLASSES)), frame.masks)


def test_an_existing_folder_is_refused_unless_empty_or_an_earlier_corrections_folder_with_force(tmp_path):
    frames = corrected_frames()[1:]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(OutputFolderError, match=f"{foreign}: the output folder is not empty"):
        write_corrections(foreign, frames)
    with pytest.raises(OutputFolderError, match=f"{foreign}: not empty and not an earlier output"):
        write_corrections(foreign, frames, force=True)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    write_corrections(empty, frames)
    with pytest.raises(OutputFolderError, match="not empty"):
        write_corrections(empty, frames[:1])
    write_corrections(empty, frames[:1], force=True)  # an earlier corrections folder may be replaced
    assert [f.file_name for f in read_corrections(empty)] == [frames[0].file_name]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing(path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(f"{path}: disk full")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    monkeypatch.setattr(corrections_coco, "write_text_atomically", failing)
    with pytest.raises(OSError, match="disk full"):
        write_corrections(tmp_path / "corrections", corrected_frames())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("frames, message", [
    ([], "no corrected frames"),
    ([CorrectedFrame("a.png", np.zeros((1, 4, 4), bool), ("gland",)),
      CorrectedFrame("b.png", np.zeros((2, 4, 4), bool), CLASSES)], "b.png: classes"),
    ([CorrectedFrame("a.png", np.zeros((1, 4, 4), bool), ("gland",)),
      CorrectedFrame("A.PNG", np.zeros((1, 4, 4), bool), ("gland",))], "A.PNG: corrected twice"),
    ([CorrectedFrame("a.png", np.zeros((1, 4, 4), bool), ("trus-structures",))], "may not be named"),
])
def test_what_cannot_be_written(tmp_path, frames, message):
    with pytest.raises(CorrectionsError, match=message):
        write_corrections(tmp_path / "out", frames)
    assert not (tmp_path / "out").exists()


def _edit_json(path: Path, change) -> None:
    payload = json.loads(path.read_text())
    change(payload)
    path.write_text(json.dumps(payload))


SMALL = "P002_F03_sagittal.png"
MALFORMED = {
    "no folder": (lambda f: f.rename(f.with_name("gone")), "{folder}: no such corrections folder"),
    "no annotations file": (lambda f: (f / ANNOTATIONS_FILE).unlink(), "{folder}/_annotations.coco.json: missing"),
    "not JSON": (lambda f: (f / ANNOTATIONS_FILE).write_text("{"), "_annotations.coco.json: not valid JSON"),
    "no images list": (lambda f: _edit_json(f / ANNOTATIONS_FILE, lambda d: d.pop("images")),
                       "_annotations.coco.json: images: missing"),
    "a bad coordinate": (lambda f: _edit_json(f / ANNOTATIONS_FILE,
                                              lambda d: d["annotations"][0]["segmentation"][0].__setitem__(3, None)),
                         "_annotations.coco.json: annotations[0].segmentation[0][3]: null is not a number"),
    "no images": (lambda f: _edit_json(f / ANNOTATIONS_FILE, lambda d: d.update(images=[], annotations=[])),
                  "_annotations.coco.json: no images"),
    "annotation of no image": (lambda f: _edit_json(f / ANNOTATIONS_FILE,
                                                    lambda d: d["annotations"][1].update(image_id=7)),
                               "_annotations.coco.json: annotations[1].image_id: 7 is not among the images"),
    "annotation of no class": (lambda f: _edit_json(f / ANNOTATIONS_FILE,
                                                    lambda d: d["annotations"][0].update(category_id=0)),
                               "annotations[0].category_id: 0 is not a class (gland, lesion)"),
    "annotation without polygon": (lambda f: _edit_json(f / ANNOTATIONS_FILE,
                                                        lambda d: d["annotations"][0].update(segmentation=[])),
                                   "annotations[0].segmentation: no polygon"),
    "no classes": (lambda f: _edit_json(f / ANNOTATIONS_FILE, lambda d: d.update(categories=d["categories"][:1],
                                                                                  annotations=[])),
                   "no categories besides the superclass"),
    "a folder in a file name": (lambda f: _edit_json(f / ANNOTATIONS_FILE,
                                                     lambda d: d["images"][0].update(file_name="x/../y.png")),
                                "images[0].file_name: 'x/../y.png' is not a plain image file name"),
    "a frame file missing": (lambda f: frame_document_path(f, SMALL).unlink(),
                             f"{{folder}}/frames/{SMALL}.coco.json: missing"),
    "a frame file too many": (lambda f: (f / "frames" / "P9.png.coco.json").write_text("{}"),
                              "frames/P9.png.coco.json: not a frame of _annotations.coco.json"),
    "a frame file of another image": (lambda f: _edit_json(frame_document_path(f, SMALL),
                                                           lambda d: d["images"][0].update(width=300)),
                                      f"{SMALL}.coco.json: images[0] is {SMALL} 300x192"),
    "a frame file with other polygons": (
        lambda f: _edit_json(frame_document_path(f, SMALL),
                             lambda d: d["annotations"].pop()),
        f"{SMALL}.coco.json: its polygons differ from _annotations.coco.json's: lesion (400 px)"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_folder_is_one_line_naming_the_file_and_the_problem(tmp_path, case):
    folder = tmp_path / "corrections"
    write_corrections(folder, corrected_frames()[1:])
    spoil, expected = MALFORMED[case]
    spoil(folder)
    with pytest.raises(CorrectionsError) as caught:
        read_corrections(folder)
    message = str(caught.value)
    assert expected.format(folder=folder) in message and "\n" not in message
