"""What a reader reads but cannot use is counted in the QC report, never dropped without a word.

Each case builds a tiny real-shaped export, runs the shared ingest (pull stage and ``trus
ingest``) and checks ``qc.json``: the counts per kind and action, and the first detail.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataParams, QcParams
from pipeline.ingest.records import IngestError
from pipeline.ingest.source import QualityError, ingest
from tests.export_fixtures import (HEIGHT, WIDTH, coco_payload, export_name, square, write_coco_export, write_image,
                                   write_semantic_export, write_yolo_export)

PATIENT = r"^(?P<patient>P\d+)_F"
FIRST, SECOND = export_name("P001_F01"), export_name("P002_F01")


def coco(annotations: list[tuple[int, int, list[float] | None]]):
    """A writer of the two-frame COCO export with these (image id, category id, polygon or None) annotations."""
    return lambda root: write_coco_export(root, coco_payload(["P001_F01", "P002_F01"], annotations))


def with_extra_image(root: Path) -> Path:
    write_coco_export(root)
    write_image(root / "train" / export_name("P003_F01"))  # in the folder, not in the JSON
    return root


def with_unknown_mask_value(root: Path) -> Path:
    gland = np.zeros((HEIGHT, WIDTH), np.uint8)
    gland[4:16, 4:20] = 1
    odd = gland.copy()
    odd[18:20, 0:5] = 7  # 10 px of a value that _classes.csv (0, 1, 2) does not list
    return write_semantic_export(root, {"P001_F01": gland, "P002_F01": odd})


def yolo(first: str, second: str):
    return lambda root: write_yolo_export(root, {"P001_F01": first, "P002_F01": second})


POLYGON = "0 .1 .1 .6 .1 .6 .6 .1 .6"
LESION_BOX = "1 .5 .5 .2 .2"
GLAND, LESION = square(4, 4, 16), square(8, 8, 6)
TRAIN_JSON = "train/_annotations.coco.json"
CASES = [  # (id, writer, classes, {kind: {action: n}}, frame of the first finding, its detail, frames kept)
    ("coco-unknown-category", coco([(0, 1, GLAND), (0, 7, LESION), (1, 1, GLAND)]), ("gland", "lesion"),
     {"unknown_category": {"error": 1}, "class_without_examples": {"error": 1}}, FIRST,
     f"{TRAIN_JSON}: annotations[1]: category_id 7 is not among the categories; not drawn", 2),
    ("coco-annotation-without-image", coco([(0, 1, GLAND), (1, 1, GLAND), (5, 2, LESION)]), ("gland",),
     {"annotation_without_image": {"warn": 1}}, "", f"{TRAIN_JSON}: annotations[2]: image_id 5 is not among the "
                                                   "images; not used", 2),
    ("coco-unlisted-image", with_extra_image, ("gland", "lesion"), {"unlisted_image": {"warn": 1}},
     export_name("P003_F01"), f"in train/ but not listed in {TRAIN_JSON}; not used", 2),
    ("coco-box-without-polygon", coco([(0, 1, GLAND), (0, 2, None), (1, 1, GLAND), (1, 2, LESION)]),
     ("gland", "lesion"), {"empty_mask": {"warn": 1}}, FIRST,
     f"{TRAIN_JSON}: annotations[1] (lesion): a box without a polygon; not drawn", 2),
    ("coco-only-box-of-a-frame", coco([(0, 2, None), (1, 1, GLAND), (1, 2, LESION)]), ("gland", "lesion"),
     {"empty_mask": {"warn": 1}}, FIRST, f"{TRAIN_JSON}: annotations[0] (lesion): a box without a polygon; "
                                         "not drawn", 2),  # not also "annotated, but every class mask is empty"
    ("coco-classes-not-asked-for", coco([(0, 1, GLAND), (0, 2, None), (1, 0, GLAND), (1, 2, LESION)]), ("gland",),
     {}, None, None, 2),  # lesion and the superclass are legitimately skipped
    ("semantic-unknown-mask-value", with_unknown_mask_value, ("gland",), {"unknown_mask_value": {"error": 1}}, SECOND,
     f"train/{Path(SECOND).stem}_mask.png: pixel value(s) 7 (10 px) not in train/_classes.csv; in no class", 2),
    ("yolo-box-among-polygons", yolo(POLYGON, f"{POLYGON}\n{LESION_BOX}"), ("gland", "lesion"),
     {"empty_mask": {"warn": 1}, "class_without_examples": {"error": 1}}, SECOND,
     f"train/labels/{Path(SECOND).stem}.txt:2 (lesion): a box without a polygon; not drawn", 2),
    ("yolo-unknown-class-id", yolo(POLYGON, f"{POLYGON}\n5 .1 .1 .6 .1 .6 .6"), ("gland",),
     {"unknown_category": {"error": 1}}, SECOND,
     f"train/labels/{Path(SECOND).stem}.txt:2: class id 5 is not among data.yaml's 2 names; not drawn", 2),
]


def counts_and_findings(source: Path, classes: tuple[str, ...], tmp_path: Path,
                        qc: QcParams | None = None) -> tuple[dict, list[dict], bool]:
    """Ingests ``source`` (QC: the defaults unless given); returns qc.json's counts and findings, and whether
    the QC stopped the ingest."""
    data = DataParams(export_dir=str(source), format="auto", classes=classes, patient_pattern=PATIENT)
    report = tmp_path / "qc.json"
    try:
        ingest(data, qc or QcParams(), tmp_path / "out", report, progress=False)
        stopped = False
    except QualityError:
        stopped = True
    written = json.loads(report.read_text())
    return written["counts"], written["findings"], stopped


@pytest.mark.parametrize("writer, classes, counts, frame, detail, kept", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_what_a_reader_cannot_use_is_reported(tmp_path: Path, writer, classes, counts: dict, frame: str | None,
                                              detail: str | None, kept: int):
    found, findings, stopped = counts_and_findings(writer(tmp_path / "export"), classes, tmp_path)
    assert found == counts
    assert stopped == any("error" in actions for actions in counts.values())
    if detail is not None:
        first = findings[0]  # the reader's findings come first
        assert (first["kind"], first["frame"], first["detail"]) == (next(iter(counts)), frame, detail)
    lenient = QcParams(**dict.fromkeys(QcParams.kinds(), "warn"))
    counts_and_findings(writer(tmp_path / "again"), classes, tmp_path / "lenient", lenient)
    assert len(pd.read_csv(tmp_path / "lenient" / "out" / "manifest.csv")) == kept


def test_box_not_drawn_but_polygons_are(tmp_path: Path):
    lenient = QcParams(**dict.fromkeys(QcParams.kinds(), "warn"))
    counts_and_findings(coco([(0, 1, GLAND), (0, 2, None), (1, 1, GLAND), (1, 2, LESION)])(tmp_path / "e"),
                        ("gland", "lesion"), tmp_path, lenient)
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv").set_index("export_file")
    assert manifest.loc[FIRST, ["px_gland", "px_lesion"]].tolist() == [16 * 16, 0]  # the box drew nothing
    assert manifest.loc[SECOND, ["px_gland", "px_lesion"]].tolist() == [16 * 16, 6 * 6]


@pytest.mark.parametrize("writer, message", [
    (coco([(0, 1, None), (0, 2, None), (1, 1, None)]),
     "export: the export has boxes but no polygons (3 annotation(s), 3 with a bbox, none with a segmentation "
     "polygon): it is an object-detection export; export the version as \"COCO Segmentation\""),
    (yolo("0 .5 .5 .4 .4", "0 .5 .5 .4 .4\n1 .2 .2 .1 .1"),
     "export/data.yaml: the export has boxes but no polygons (3 label line(s), all 'class cx cy w h'): it is an "
     "object-detection export; export the instance-segmentation version (YOLOv8 of a segmentation project: "
     "'class x1 y1 x2 y2 ...' lines)"),
], ids=["coco", "yolo"])
def test_an_export_of_boxes_only_is_refused(tmp_path: Path, writer, message: str):
    writer(tmp_path / "export")
    with pytest.raises(IngestError) as error:
        counts_and_findings(tmp_path / "export", ("gland", "lesion"), tmp_path,
                            QcParams(class_without_examples="warn"))
    assert str(error.value) == f"{tmp_path}/{message}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "qc.json").exists()
