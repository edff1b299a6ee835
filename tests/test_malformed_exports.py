"""Structurally malformed exports: one line naming the file and the bad element, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.ingest.formats import read_export
from pipeline.ingest.records import IngestError
from tests.export_fixtures import (coco_payload, export_name, square, write_coco_export, write_semantic_export,
                                   write_yolo_export)


def good_payload() -> dict:
    """Two images, categories 0 (superclass), 1 gland, 2 lesion, and three polygon annotations."""
    return coco_payload(["P001_F01", "P002_F01"], [(0, 1, square(4, 4, 16)), (0, 2, square(8, 8, 6)),
                                                   (1, 1, square(6, 5, 14))])


def edit(change):
    """A mutation of the good payload: ``change(payload)`` edits it in place or returns a replacement."""
    def mutate() -> object:
        payload = good_payload()
        replaced = change(payload)
        return payload if replaced is None else replaced
    return mutate


def set_(path: str, value):
    """Sets the element at a dotted/indexed path such as ``images.1.width``; value ``...`` deletes it."""
    def change(payload: dict) -> None:
        *parents, last = path.split(".")
        target = payload
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        key = int(last) if last.isdigit() else last
        if value is ...:
            del target[key]
        else:
            target[key] = value
    return edit(change)


COCO_CASES = [  # (id, mutation, the message after "<file>: ")
    ("top-level-list", edit(lambda p: [p]),
     "expected a JSON object with images, annotations and categories, got a list"),
    ("no-images", set_("images", ...), "images: missing"),
    ("images-object", set_("images", {"0": {}}), 'images: expected a list, got {"0": {}}'),
    ("image-not-object", set_("images.1", "x.jpg"), 'images[1]: expected an object, got "x.jpg"'),
    ("no-width", set_("images.1.width", ...), "images[1].width: missing"),
    ("text-width", set_("images.1.width", "32"), 'images[1].width: "32" is not an integer'),
    ("zero-width", set_("images.1.height", 0), "images[1].height: 0 is below 1"),
    ("fraction-width", set_("images.1.width", 32.5), "images[1].width: 32.5 is not an integer"),
    ("text-id", set_("images.1.id", "1"), 'images[1].id: "1" is not an integer'),
    ("repeated-id", set_("images.1.id", 0), "images[1].id: 0 repeats images[0].id"),
    ("null-file-name", set_("images.0.file_name", None), "images[0].file_name: expected a non-empty text, got null"),
    ("no-image-id", set_("annotations.2.image_id", ...), "annotations[2].image_id: missing"),
    ("text-category-id", set_("annotations.0.category_id", "1"), 'annotations[0].category_id: "1" is not an integer'),
    ("null-coordinate", set_("annotations.0.segmentation.0.5", None),
     "annotations[0].segmentation[0][5]: null is not a number"),
    ("text-coordinate", set_("annotations.1.segmentation.0.3", "12.5"),
     'annotations[1].segmentation[0][3]: "12.5" is not a number'),
    ("boolean-coordinate", set_("annotations.0.segmentation.0.0", True),
     "annotations[0].segmentation[0][0]: true is not a number"),
    ("nan-coordinate", set_("annotations.0.segmentation.0.2", float("nan")),
     "annotations[0].segmentation[0][2]: NaN is not a finite number"),
    ("text-segmentation", set_("annotations.0.segmentation", "polygon"),
     'annotations[0].segmentation: expected a list, got "polygon"'),
    ("rle", set_("annotations.0.segmentation", {"counts": [0, 5, 10], "size": [24, 32]}),
     'annotations[0].segmentation: an RLE mask, not polygons (lists of x, y coordinates); export the version as '
     '"COCO Segmentation"'),
    ("flat-segmentation", set_("annotations.0.segmentation", square(4, 4, 16)),
     "annotations[0].segmentation[0]: expected a list, got 4"),
    ("odd-coordinates", set_("annotations.0.segmentation.0", [4, 4, 20, 4, 20, 20, 4]),
     "annotations[0].segmentation[0]: an odd number of coordinates (7); expected x, y pairs"),
    ("no-category-name", set_("categories.1.name", ...), "categories[1].name: missing"),
    ("repeated-category", set_("categories.2.id", 1), "categories[2].id: 1 repeats categories[1].id"),
    ("null-annotations", set_("annotations", None), "annotations: expected a list, got null"),
    ("annotation-not-object", set_("annotations.2", [1, 0, 1]), "annotations[2]: expected an object, got [1, 0, 1]"),
]


@pytest.mark.parametrize("mutation, message", [case[1:] for case in COCO_CASES], ids=[case[0] for case in COCO_CASES])
def test_malformed_coco_json_names_file_and_json_path(tmp_path: Path, mutation, message: str):
    root = write_coco_export(tmp_path / "export")
    path = root / "train" / "_annotations.coco.json"
    path.write_text(json.dumps(mutation()))
    with pytest.raises(IngestError) as error:
        read_export(root, "auto", ["gland", "lesion"])
    assert str(error.value) == f"{path}: {message}"


def test_a_byte_order_mark_is_not_malformed(tmp_path: Path):
    root = write_coco_export(tmp_path / "export")
    path = root / "train" / "_annotations.coco.json"
    path.write_text("\ufeff" + path.read_text(), encoding="utf-8")
    assert len(read_export(root, "auto", ["gland"])) == 2


def write_files(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())


def semantic(root: Path) -> Path:
    import numpy as np
    return write_semantic_export(root, {"P001_F01": np.ones((24, 32), np.uint8)})


def yolo(root: Path) -> Path:
    return write_yolo_export(root, {"P001_F01": "0 .1 .1 .5 .1 .5 .5"})


LABEL = f"train/labels/{Path(export_name('P001_F01')).stem}.txt"
OTHER_CASES = [  # (id, writer, files written over it, the message, whole (True) or its start)
    ("csv-binary", semantic, {"train/_classes.csv": b"\xff\xfe\x00P\x00i"}, "train/_classes.csv: unreadable ("),
    ("csv-repeated-value", semantic, {"train/_classes.csv": "Pixel Value, Class\n0, background\n1, gland\n1, lesion"},
     "train/_classes.csv:4: pixel value 1 is already listed on line 3"),
    ("csv-empty-name", semantic, {"train/_classes.csv": "Pixel Value, Class\n0, background\n1, "},
     "train/_classes.csv:3: expected '<pixel value>, <class>', got '1,'"),
    ("csv-negative", semantic, {"train/_classes.csv": "Pixel Value, Class\n-1, gland"},
     "train/_classes.csv:2: expected '<pixel value>, <class>', got '-1,gland'"),
    ("yaml-list", yolo, {"data.yaml": "- gland\n- lesion\n"}, "data.yaml: no 'names' list"),
    ("yaml-names-text", yolo, {"data.yaml": "names: gland\n"}, "data.yaml: no 'names' list"),
    ("yaml-broken", yolo, {"data.yaml": "names: [gland\n"}, "data.yaml: not readable YAML ("),
    ("yaml-binary", yolo, {"data.yaml": b"\xff\xfe\x00n"}, "data.yaml: not readable YAML ("),
    ("yaml-nc-text", yolo, {"data.yaml": "names: [gland, lesion]\nnc: two\n"},
     "data.yaml: nc is two but 2 names are listed"),
    ("label-binary", yolo, {LABEL: b"0 \xff\xfe 0.1"}, f"{LABEL}: not a readable label file ("),
    ("label-infinite", yolo, {LABEL: "0 .1 .1 1e999 .1 .5 .5"}, f"{LABEL}:1: expected 'class x1 y1 x2 y2 x3 y3 ...'"),
]


@pytest.mark.parametrize("writer, files, message", [case[1:] for case in OTHER_CASES],
                         ids=[case[0] for case in OTHER_CASES])
def test_malformed_classes_csv_data_yaml_and_labels(tmp_path: Path, writer, files: dict, message: str):
    root = writer(tmp_path / "export")
    write_files(root, files)
    with pytest.raises(IngestError) as error:
        read_export(root, "auto", ["gland"])
    assert str(error.value).startswith(f"{root}/{message}")


def test_trus_ingest_prints_one_line_for_a_malformed_zip(tmp_path: Path, monkeypatch):
    from tests.export_fixtures import zipped
    root = write_coco_export(tmp_path / "export")
    (root / "train" / "_annotations.coco.json").write_text(json.dumps(set_("annotations.0.segmentation.0.5", None)()))
    zipped(root, tmp_path / "export.zip", wrap="my-export")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["ingest", "export.zip", "--out", "checked"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == ("error: export.zip: my-export/train/_annotations.coco.json: "
                                     "annotations[0].segmentation[0][5]: null is not a number")


def json_paths(value, prefix: tuple = ()) -> list[tuple]:
    """Every element path of a JSON value (dict keys and list indices), depth first."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [path for key, child in children for path in [(*prefix, key), *json_paths(child, (*prefix, key))]]


def test_no_element_of_the_wrong_type_gives_a_traceback(tmp_path: Path):
    """Every element of a good file replaced in turn by values of every other JSON type, and deleted."""
    root = write_coco_export(tmp_path / "export")
    path = root / "train" / "_annotations.coco.json"
    unexpected = []
    for element in json_paths(good_payload()):
        for replacement in (None, "x", [], {}, -1, 1.5, True, [None], ...):
            payload = good_payload()
            parent = payload
            for key in element[:-1]:
                parent = parent[key]
            if replacement is ...:
                del parent[element[-1]]
            else:
                parent[element[-1]] = replacement
            path.write_text(json.dumps(payload))
            try:
                read_export(root, "auto", ["gland", "lesion"])
            except IngestError as error:
                assert str(error).startswith(f"{path}: ") and "\n" not in str(error)
            except Exception as error:  # noqa: BLE001 - what the test looks for
                unexpected.append(f"{element} = {replacement!r}: {type(error).__name__}: {error}")
    assert unexpected == []
