"""Reading Roboflow Semantic Segmentation Masks and YOLOv8 exports, and telling the formats apart."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.ingest.coco import read_coco_export
from pipeline.ingest.formats import READERS, detect_format, read_export
from pipeline.ingest.records import IngestError
from pipeline.ingest.semantic_masks import read_classes_csv, read_semantic_export
from pipeline.ingest.yolo import read_yolo_export
from pipeline.synthetic import SampleSpec, write_sample_export

DHCN_VALUES = {"background": 0, "cabinet": 1, "ceiling": 2, "chair": 3, "door": 4, "elevator": 5, "railing": 6,
               "road": 7, "stair": 8, "tree": 9, "wall": 10}


@pytest.fixture
def dhcn(real_exports: Path) -> Path:
    """The real Semantic Segmentation Masks export (3 frames per split, 640x640, 11 classes)."""
    return real_exports / "DHCN_dataset.v1i.png-mask-semantic"


@pytest.fixture
def coco_export(tmp_path: Path) -> Path:
    """A synthetic COCO Segmentation export of 4 frames, 320x240, classes gland and lesion."""
    spec = SampleSpec(n_patients=2, frames_per_patient=2, frame_width=320, frame_height=240)
    write_sample_export(tmp_path / "coco", seed=1, spec=spec)
    return tmp_path / "coco"


def write_yolo(root: Path, names: list | dict, labels: dict[str, dict[str, str | None]]) -> Path:
    """A YOLOv8 export: Roboflow's data.yaml, and per split {image stem: label text} with blank 20x10 images."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "../train/images", "val": "../valid/images",
                                                     "nc": len(names), "names": names}))
    for split, files in labels.items():
        for stem, text in files.items():
            for sub in ("images", "labels"):
                (root / split / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / split / "images" / f"{stem}.jpg"), np.zeros((10, 20, 3), np.uint8))
            if text is not None:
                (root / split / "labels" / f"{stem}.txt").write_text(text)
    return root


def yolo_line(class_id: int, flat: list[float], width: int, height: int) -> str:
    """One YOLO polygon line: a flat COCO polygon in px, normalised by the image size."""
    xy = np.reshape(flat, (-1, 2)) / (width, height)
    return " ".join([str(class_id), *(f"{v:.6f}" for v in xy.ravel())])


@pytest.fixture
def yolo_export(coco_export: Path, tmp_path: Path) -> Path:
    """The synthetic COCO export converted to YOLOv8: each COCO polygon becomes one normalised line."""
    root = write_yolo(tmp_path / "yolo", {0: "gland", 1: "lesion"}, {})
    for path in coco_export.glob("*/_annotations.coco.json"):
        payload = json.loads(path.read_text())
        for sub in ("images", "labels"):
            (root / path.parent.name / sub).mkdir(parents=True)
        for image in payload["images"]:
            shutil.copy(path.parent / image["file_name"], root / path.parent.name / "images")
            lines = [yolo_line(a["category_id"] - 1, flat, image["width"], image["height"])
                     for a in payload["annotations"] if a["image_id"] == image["id"] for flat in a["segmentation"]]
            (root / path.parent.name / "labels" / f"{Path(image['file_name']).stem}.txt").write_text("\n".join(lines))
    return root


@pytest.mark.parametrize("classes, unannotated, pixels", [
    (("ceiling", "cabinet"), {"frame_0004_3c52a740", "frame_0020_6a0121bf", "frame_0065_37bb6e52"}, (33608, 0)),
    (("cabinet", "door"), {"frame_0014_d3059b10"}, (0, 254578)),
])
def test_real_semantic_export(dhcn: Path, classes: tuple[str, str], unannotated: set[str], pixels: tuple[int, int]):
    frames = read_semantic_export(dhcn, classes)
    assert [f.split for f in frames] == ["test"] * 3 + ["train"] * 3 + ["valid"] * 3
    assert {f.name.frame_id for f in frames if not f.annotated} == unannotated
    for frame in frames:
        label = cv2.imread(str(frame.image_path.with_name(frame.image_path.stem + "_mask.png")), cv2.IMREAD_UNCHANGED)
        expected = np.stack([np.isin(label, [DHCN_VALUES[name]]) for name in classes])
        assert (frame.width, frame.height) == (640, 640)
        np.testing.assert_array_equal(frame.masks(2), expected)
    assert tuple(int(sum(f.masks(2)[c].sum() for f in frames)) for c in range(2)) == pixels
    assert detect_format(dhcn) == "png-mask-semantic"


def test_real_augmented_copies_share_the_original_name(dhcn: Path):
    train = [f for f in read_semantic_export(dhcn, ["ceiling"]) if f.split == "train"]
    assert {f.name.original_name for f in train} == {"frame_0000.jpg"}
    assert len({f.name.frame_id for f in train}) == 3
    assert [int(f.masks(1).sum()) for f in train] == [7854] * 3


def test_real_classes_csv_and_unknown_class(dhcn: Path):
    csv_path = dhcn / "train" / "_classes.csv"
    assert not csv_path.read_bytes().endswith(b"\n")  # the real file's quirk
    assert read_classes_csv(csv_path) == {name: [value] for name, value in DHCN_VALUES.items()}
    with pytest.raises(IngestError, match=r"test/_classes.csv: class\(es\) prostate not in the export; "
                                          r"it has background, cabinet, ceiling, chair, door"):
        read_semantic_export(dhcn, ["ceiling", "prostate"])


@pytest.mark.parametrize("text, expected", [
    ("\ufeffPixel Value,Class\r\n0,background\r\n1,gland\r\n", {"background": [0], "gland": [1]}),
    ('Pixel Value, Class\n0, background\n1, "lesion, grade 2"\n\n2, gland',
     {"background": [0], "lesion, grade 2": [1], "gland": [2]}),
    ("Pixel Value, Class\n1, gland\n2, gland\n", {"gland": [1, 2]}),
    ("filename, gland, lesion\nx.jpg, 1, 0\n", "header is not 'Pixel Value, Class'"),
    ("Pixel Value, Class\n0, background\none, gland\n", r"_classes.csv:3: expected '<pixel value>, <class>'"),
])
def test_classes_csv_variants(tmp_path: Path, text: str, expected):
    path = tmp_path / "_classes.csv"
    path.write_text(text, encoding="utf-8")
    if isinstance(expected, dict):
        assert read_classes_csv(path) == expected
    else:
        with pytest.raises(IngestError, match=expected):
            read_classes_csv(path)


def test_unpaired_images_and_masks_are_named(dhcn: Path, tmp_path: Path):
    split = shutil.copytree(dhcn / "test", tmp_path / "export" / "test")
    masks = sorted(split.glob("*_mask.png"))
    masks[0].unlink()
    masks[1].rename(split / "stray_mask.png")
    with pytest.raises(IngestError, match=r"test: 2 image\(s\) without a mask: frame_0004_jpg.*jpg, "
                                          r"frame_0020_jpg.*jpg; 1 mask\(s\) without an image: stray_mask.png"):
        read_semantic_export(tmp_path / "export", ["ceiling"])


def test_yolo_matches_coco(coco_export: Path, yolo_export: Path):
    coco = {f.image_path.name: f for f in read_coco_export(coco_export, ["gland", "lesion"])}
    frames = read_yolo_export(yolo_export, ["gland", "lesion"])
    assert sorted(f.image_path.name for f in frames) == sorted(coco) and len(frames) == 4
    assert any(f.annotated for f in frames)
    for frame in frames:
        reference = coco[frame.image_path.name]
        assert (frame.split, frame.width, frame.height, frame.annotated) == \
            (reference.split, 320, 240, reference.annotated)
        # one rasteriser (records.rasterise_shapes): the same masks up to ties. The 6-decimal YOLO coordinates
        # lie within 0.00016 px of COCO's 3-decimal ones on these 320 px frames, so only a pixel whose centre an
        # edge passes that close to may flip (one does in this export: an edge crosses row 118 at x = 229.00012)
        differs = frame.masks(2) != reference.masks(2)
        assert differs.sum() <= 2
        for mask, changed in zip(reference.masks(2), differs):
            edge = mask ^ (cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert not (changed & ~(edge | (grown & ~mask))).any()  # on the outline, never inside or far off
    assert detect_format(yolo_export) == "yolov8"


@pytest.mark.parametrize("names, classes, text, boxes", [  # boxes: per class, the filled rows, columns of 20x10 px
    (["gland"], ["gland"], "0 .13 .2 .85 .2 .85 .8 .13 .8 .13 .2", [np.s_[2:8, 3:17]]),  # closed; x 2.6..17: cols 3..16
    (["gland"], ["gland"], "0 0.1 0.2 0.85 0.2 0.85 0.8 0.1 0.8\n\n", [np.s_[2:8, 2:17]]),  # none, blank line
    (["gland"], ["gland"], "0 .25 .3 .75 .3 .75 .7 .25 .7", [np.s_[3:7, 5:15]]),  # x 5..15, y 3..7
    (["lesion", "gland"], ["gland", "lesion"], "1 .25 .3 .75 .3 .75 .7 .25 .7\n0 0 0 0.1 0 0.1 0.2 0 0.2",
     [np.s_[3:7, 5:15], np.s_[0:2, 0:2]]),  # mapped by name, not by id
    (["gland", "lesion", "other"], ["gland", "lesion"], "2 .25 .3 .75 .3 .75 .7", [None, None]),  # not asked for
    (["gland", "lesion"], ["gland", "lesion"], None, [None, None]),  # no label file: no annotations
])
def test_yolo_lines(tmp_path: Path, names: list[str], classes: list[str], text: str | None, boxes: list):
    root = write_yolo(tmp_path / "yolo", names, {"train": {"a_png.rf.0123456789abcdef0123456789abcdef": text}})
    frame, = read_yolo_export(root, classes)
    expected = np.zeros((len(classes), 10, 20), bool)
    for channel, box in enumerate(boxes):
        if box is not None:
            expected[channel][box] = True
    assert (frame.width, frame.height, frame.name.original_name) == (20, 10, "a.png")
    np.testing.assert_array_equal(frame.masks(len(classes)), expected)
    assert frame.annotated == expected.any()


@pytest.mark.parametrize("text, message", [
    ("0 .1 .1 .5 .1 .5 .5\n-1 .1 .1 .5 .1 .5 .5", r"labels/a.txt:2: class id -1 is negative"),
    ("0 0.1 abc 0.2 0.2", r"labels/a.txt:1: not a class id followed by numbers"),
    ("gland 0.1 0.1 0.2 0.2", r"labels/a.txt:1: not a class id followed by numbers"),
    ("\n0 0.1 0.2 0.3", r"labels/a.txt:2: expected .* got 3 coordinate\(s\)"),
    ("0 0.1 0.2 0.3 0.4 0.5 nan", r"labels/a.txt:1: expected .* got 6 coordinate\(s\)"),
])
def test_yolo_bad_lines_name_file_and_line(tmp_path: Path, text: str, message: str):
    root = write_yolo(tmp_path / "yolo", ["gland", "lesion"], {"valid": {"a": text}})
    with pytest.raises(IngestError, match=message):
        read_yolo_export(root, ["gland"])


@pytest.mark.parametrize("files, classes, message", [  # files: written over a good export
    ({}, ["lesion"], r"data.yaml: class\(es\) lesion not in the export; it has gland"),
    ({"train/labels/b.txt": "0 .1 .1 .5 .1 .5 .5"}, ["gland"], r"labels: 1 label file\(s\) without an image: b.txt"),
    ({"data.yaml": "names: [gland]\nnc: 2"}, ["gland"], "data.yaml: nc is 2 but 1 names are listed"),
    ({"data.yaml": "names: {0: gland, 2: lesion}"}, ["gland"], r"data.yaml: no 'names' list"),
])
def test_yolo_export_errors(tmp_path: Path, files: dict[str, str], classes: list[str], message: str):
    root = write_yolo(tmp_path / "yolo", ["gland"], {"train": {"a": "0 .1 .1 .5 .1 .5 .5"}})
    for name, text in files.items():
        (root / name).write_text(text)
    with pytest.raises(IngestError, match=message):
        read_yolo_export(root, classes)


@pytest.mark.parametrize("export, expected_format, classes, n_frames", [
    ("coco_export", "coco-segmentation", ["gland", "lesion"], 4),
    ("yolo_export", "yolov8", ["gland", "lesion"], 4),
    ("dhcn", "png-mask-semantic", ["wall"], 9),
])
def test_read_export_auto_dispatches(request, export: str, expected_format: str, classes: list[str], n_frames: int):
    root = request.getfixturevalue(export)
    assert detect_format(root) == expected_format
    frames = read_export(root, "auto", classes)
    direct = READERS[expected_format](root, classes)
    assert len(frames) == n_frames
    assert [(f.image_path, f.annotated) for f in frames] == [(f.image_path, f.annotated) for f in direct]
