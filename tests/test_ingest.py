"""Reading Roboflow COCO Segmentation exports, checked on real exports and on hand-made ones."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.config import DataParams, QcParams
from pipeline.ingest.coco import read_coco_export, read_split
from pipeline.ingest.coco_json import load_coco_file
from pipeline.ingest.records import IngestError
from pipeline.ingest.names import parse_export_name, patient_of
from pipeline.ingest.normalise import normalise_export
from pipeline.ingest.source import opened_export
from pipeline.imaging.masks import unpack_masks


@pytest.mark.parametrize(
    "file_name, original, digest",
    [
        ("y701_jpg.rf.81a4472f77fdc1f31537342ceca340c9.jpg", "y701.jpg", "81a4472f77fdc1f31537342ceca340c9"),
        ("frame_0014_jpg.rf.d3059b108d1e5c0bed6002590b9ae5d8.jpg", "frame_0014.jpg", "d3059b108d1e5c0bed6002590b9ae5d8"),
        ("P007_F03_png.rf.AbCdEfGhIjKlMnOpQrSt.jpg", "P007_F03.png", "AbCdEfGhIjKlMnOpQrSt"),
        ("scan_0001_dcm.rf.0123456789abcdef0123456789abcdef.jpg", "scan_0001.dcm", "0123456789abcdef0123456789abcdef"),
        ("plain_name.png", "plain_name.png", ""),
        ("weird.rf.short.jpg", "weird.rf.short.jpg", ""),
    ],
)
def test_parse_export_name(file_name, original, digest):
    name = parse_export_name(file_name)
    assert (name.original_name, name.digest) == (original, digest)


def test_augmented_copies_share_the_original_but_not_the_id():
    a = parse_export_name("P001_F01_png.rf.98ca5d19de6b736e8193511efc61eb26.jpg")
    b = parse_export_name("P001_F01_png.rf.47489573fed1f7905c5e674ac418ec7f.jpg")
    assert a.original_name == b.original_name and a.frame_id != b.frame_id


@pytest.mark.parametrize("name, patient", [("P007_F03.png", "P007"), ("case12_slice4.jpg", "case12"), ("nounderscore.png", None)])
def test_patient_of(name, patient):
    assert patient_of(name, r"^(?P<patient>[^_]+)_") == patient


def test_real_export_with_missing_images_is_reported(real_exports: Path):
    annotations = real_exports / "BT_Detectron2_MaskRCNN" / "test" / "_annotations.coco.json"
    with pytest.raises(IngestError) as error:
        read_split(load_coco_file(annotations), ["Tumor"])
    message = str(error.value)
    assert str(annotations) in message and "95 of 100 listed images are missing" in message
    assert "y713_jpg.rf.16ada07eb38c82cb93c711a288134781.jpg" in message


@pytest.fixture
def bt_subset(real_exports: Path, tmp_path: Path) -> Path:
    """The real BT test split reduced to the 5 images that are present."""
    source = real_exports / "BT_Detectron2_MaskRCNN" / "test"
    target = tmp_path / "export" / "test"
    target.mkdir(parents=True)
    payload = json.loads((source / "_annotations.coco.json").read_text())
    present = {p.name for p in source.glob("*.jpg")}
    payload["images"] = [i for i in payload["images"] if i["file_name"] in present]
    ids = {i["id"] for i in payload["images"]}
    payload["annotations"] = [a for a in payload["annotations"] if a["image_id"] in ids]
    (target / "_annotations.coco.json").write_text(json.dumps(payload))
    for name in present:
        shutil.copy(source / name, target / name)
    return tmp_path / "export"


def test_real_export_polygons_rasterise_to_their_area(bt_subset: Path):
    frames = read_coco_export(bt_subset, ["Tumor"])
    assert len(frames) == 5
    annotated = [f for f in frames if f.annotated]
    assert len(annotated) == 4  # the category-0 superclass (also named "Tumor") is not a class
    payload = json.loads((bt_subset / "test" / "_annotations.coco.json").read_text())
    for frame in annotated:
        mask = frame.masks(1)[0]
        rings = [ring for shape in frame.shapes[0] for ring in shape]
        polygon_area = sum(cv2.contourArea(ring) for ring in rings)
        perimeter = sum(cv2.arcLength(ring, True) for ring in rings)
        # filled pixels = polygon area + about half the boundary pixels
        assert abs(mask.sum() - (polygon_area + perimeter / 2)) <= 0.02 * polygon_area
        bbox_area = [a["area"] for a in payload["annotations"]
                     if a["image_id"] == next(i["id"] for i in payload["images"] if i["file_name"] == frame.image_path.name)]
        assert bbox_area[0] > polygon_area  # Roboflow's 'area' is the bbox area, which we ignore


def test_normalise_real_export(bt_subset: Path, tmp_path: Path):
    out = tmp_path / "frames"
    out.mkdir()
    params = DataParams(classes=("Tumor",), patient_pattern=r"^(?P<patient>y\d+)")
    result = normalise_export(bt_subset, out, params, QcParams(), progress=False)
    manifest = result.manifest
    assert len(manifest) == 5 and set(manifest["patient"]) == {"y701", "y702", "y703", "y704", "y705"}
    assert manifest["annotated"].sum() == 4 and result.export_format == "coco-segmentation"
    assert [f.kind for f in result.findings] == []
    for row in manifest.itertuples():
        image = cv2.imread(str(out / "images" / f"{row.frame_id}.png"), cv2.IMREAD_UNCHANGED)
        mask = unpack_masks(cv2.imread(str(out / "masks" / f"{row.frame_id}.png"), cv2.IMREAD_UNCHANGED), 1)
        assert image.shape == (640, 640) and mask.shape == (1, 640, 640)
        assert mask.sum() == row.px_Tumor
    dropped = tmp_path / "dropped"
    dropped.mkdir()
    kept = normalise_export(bt_subset, dropped, DataParams(classes=("Tumor",), unannotated="drop"), QcParams(),
                            progress=False)
    assert len(kept.manifest) == 4 and kept.manifest["patient"].str.startswith("unknown:").all()
    assert [(f.kind, f.action) for f in kept.findings] == [("unknown_patient", "warn")] * 4


def test_image_size_mismatch_is_a_finding_and_the_frame_is_not_written(bt_subset: Path, tmp_path: Path):
    image = next((bt_subset / "test").glob("*.jpg"))
    cv2.imwrite(str(image), np.zeros((100, 100, 3), np.uint8))
    out = tmp_path / "frames"
    out.mkdir()
    params = DataParams(classes=("Tumor",), patient_pattern=r"^(?P<patient>y\d+)")
    result = normalise_export(bt_subset, out, params, QcParams(), progress=False)
    assert [(f.kind, f.action, f.frame) for f in result.findings] == [("size_mismatch", "error", image.name)]
    assert "image is 100x100 but its annotations say 640x640" in result.findings[0].detail
    assert len(result.manifest) == 4 and image.name not in set(result.manifest["export_file"])
    assert len(list((out / "images").iterdir())) == 4


def test_unknown_class_lists_what_the_export_has(bt_subset: Path):
    with pytest.raises(IngestError, match=r"class\(es\) gland not in the export; it has Tumor"):
        read_coco_export(bt_subset, ["gland"])


def test_folder_with_images_but_no_annotations(bt_subset: Path):
    (bt_subset / "test" / "_annotations.coco.json").unlink()
    with pytest.raises(IngestError, match="images but no _annotations.coco.json"):
        read_coco_export(bt_subset, ["Tumor"])


def test_zipped_export_and_corrupt_zip(bt_subset: Path, tmp_path: Path):
    archive = Path(shutil.make_archive(str(tmp_path / "export"), "zip", bt_subset))
    with opened_export(archive) as root:
        assert len(read_coco_export(root, ["Tumor"])) == 5
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(IngestError, match="broken.zip: not a readable zip"):
        with opened_export(broken):
            pass


def ring(*points: tuple[float, float]) -> np.ndarray:
    return np.asarray(points, np.float32)


OUTER = ring((2, 2), (17, 2), (17, 17), (2, 17))
HOLE = ring((7, 7), (12, 7), (12, 12), (7, 12))


@pytest.mark.parametrize(
    "shapes, expected_pixels",
    [  # pixel-centre rule: a ring with integer corners (2, 2)-(17, 17) covers columns and rows 2..16
        (((OUTER,),), 15 * 15),  # one polygon, no closing point
        (((np.vstack([OUTER, OUTER[:1]]),),), 15 * 15),  # the same with a closing point
        (((OUTER, HOLE),), 15 * 15),  # COCO has no holes: a ring inside another adds nothing (union)
        (((OUTER, OUTER),), 15 * 15),  # a ring listed twice does not cancel itself
        (((ring((2, 2), (12, 2), (12, 12), (2, 12)), ring((7, 7), (17, 7), (17, 17), (7, 17))),), 175),  # overlap
        (((OUTER,), (HOLE,)), 15 * 15),  # a second object over the first stays filled (union)
        (((ring((0, 0), (3, 0), (3, 3), (0, 3)), ring((10, 10), (13, 10), (13, 13), (10, 13))),), 2 * 9),  # two parts
        (((ring((0, 0), (5, 5)),),), 0),  # fewer than 3 points: nothing
    ],
)
def test_rasterise_shapes(shapes, expected_pixels):
    from pipeline.ingest.records import rasterise_shapes

    masks = rasterise_shapes((shapes, ()), 2, 20, 20)
    assert masks.shape == (2, 20, 20) and not masks[1].any()
    assert int(masks[0].sum()) == expected_pixels
