"""Where the export sits: plain or zipped, wrapped in one folder or not; errors inside a zip name the zip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import DataParams, QcParams
from pipeline.ingest.formats import unwrap
from pipeline.ingest.source import QualityError, ingest
from tests.export_fixtures import (HEIGHT, WIDTH, export_name, write_coco_export, write_image, write_semantic_export,
                                   write_yolo_export, zipped)


def label_mask() -> np.ndarray:
    label = np.zeros((HEIGHT, WIDTH), np.uint8)
    label[4:16, 4:20] = 1
    return label


WRITERS = {  # format -> writes a one-frame-or-more export of class gland into a folder
    "coco-segmentation": write_coco_export,
    "png-mask-semantic": lambda root: write_semantic_export(root, {"P001_F01": label_mask(), "P002_F01": label_mask()}),
    "yolov8": lambda root: write_yolo_export(root, {"P001_F01": "0 0.1 0.1 0.6 0.1 0.6 0.6 0.1 0.6"}),
}
FRAMES = {"coco-segmentation": 2, "png-mask-semantic": 2, "yolov8": 1}


def lay_out(export: Path, layout: str, tmp_path: Path) -> Path:
    """The export as the user hands it over: ``layout`` is zip, wrapped-zip, wrapped-folder or mac-zip."""
    if layout == "folder":
        return export
    if layout == "zip":
        return zipped(export, tmp_path / "export.zip")
    if layout == "wrapped-folder":
        wrapper = tmp_path / "download"
        export.rename(wrapper.mkdir() or wrapper / "my-export")
        return wrapper
    (export / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # what macOS leaves, and AppleDouble files
    for split in [p for p in export.iterdir() if p.is_dir()]:
        write_image(split / f"._{export_name('P009_F01')}")
    archive = zipped(export, tmp_path / "export.zip", wrap="my-export")
    if layout == "mac-zip":
        import zipfile
        with zipfile.ZipFile(archive, "a") as appended:
            appended.writestr("__MACOSX/my-export/._train", b"\0\5\26\7")
    return archive


def run_ingest(source: Path, tmp_path: Path, name: str = "out", **qc: str) -> tuple[int, str]:
    """Ingests ``source`` with class gland; returns (frames, dataset version)."""
    data = DataParams(export_dir=str(source), format="auto", classes=("gland",))
    result = ingest(data, QcParams(**qc), tmp_path / name, tmp_path / f"{name}.qc.json", progress=False)
    version = json.loads((tmp_path / name / "source.json").read_text())["dataset_version"]
    return len(result.manifest), version


@pytest.mark.parametrize("export_format", sorted(WRITERS))
@pytest.mark.parametrize("layout", ["zip", "wrapped-zip", "wrapped-folder", "mac-zip"])
def test_every_format_reads_wrapped_or_not(tmp_path: Path, export_format: str, layout: str):
    reference = run_ingest(WRITERS[export_format](tmp_path / "reference"), tmp_path, "reference")
    source = lay_out(WRITERS[export_format](tmp_path / "export"), layout, tmp_path)
    frames, version = run_ingest(source, tmp_path)
    assert frames == FRAMES[export_format] == reference[0]
    assert version == reference[1]  # the same dataset version however it was packed


@pytest.mark.parametrize("files, expected", [
    (["my-export/train/_annotations.coco.json", "my-export/README.roboflow.txt"], "my-export"),
    (["train/_annotations.coco.json"], "."),  # an export of one split is not a wrapper
    (["train/images/a.jpg", "train/labels/a.txt"], "."),  # nor is a YOLO split
    (["my-export/data.yaml", "my-export/train/images/a.jpg"], "my-export"),
    (["__MACOSX/my-export/._data.yaml", ".DS_Store", "my-export/train/_classes.csv"], "my-export"),
    (["Downloads/my-export/train/_annotations.coco.json"], "Downloads/my-export"),
    (["my-export/train/_annotations.coco.json", "frames_manifest.csv"], "my-export"),  # files beside it
    (["my-export/train/_annotations.coco.json", "other/notes.txt"], "."),  # two folders: not a wrapper
    (["data.yaml", "train/images/a.jpg"], "."),  # an export of one split with its data.yaml
    (["_annotations.coco.json", "extra/a.jpg"], "."),  # an export file here: this is the export
])
def test_unwrap(tmp_path: Path, files: list[str], expected: str):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert unwrap(tmp_path) == tmp_path / expected


def break_coco_json(root: Path) -> None:
    (root / "train" / "_annotations.coco.json").write_text("{not json")


def break_coco_image(root: Path) -> None:
    (root / "train" / export_name("P002_F01")).write_bytes(b"not a jpeg")


def remove_coco_image(root: Path) -> None:
    (root / "train" / export_name("P002_F01")).unlink()


def unpair_semantic_mask(root: Path) -> None:
    (root / "train" / f"{Path(export_name('P001_F01')).stem}_mask.png").unlink()


def break_yolo_line(root: Path) -> None:
    (root / "train" / "labels" / f"{Path(export_name('P001_F01')).stem}.txt").write_text("gland 0.1 0.1")


def shrink_semantic_mask(root: Path) -> None:
    import cv2
    cv2.imwrite(str(root / "train" / f"{Path(export_name('P001_F01')).stem}_mask.png"), np.zeros((5, 5), np.uint8))


STEM = Path(export_name("P001_F01")).stem


@pytest.mark.parametrize("export_format, breakage, message", [
    ("coco-segmentation", break_coco_json, "export.zip: my-export/train/_annotations.coco.json: not valid JSON ("),
    ("coco-segmentation", break_coco_image, f"export.zip: my-export/train/{export_name('P002_F01')}: not a readable "
                                            "image"),
    ("coco-segmentation", remove_coco_image, "export.zip: my-export/train/_annotations.coco.json: 1 of 2 listed "
                                             "images are missing from export.zip: my-export/train: "),
    ("png-mask-semantic", unpair_semantic_mask, "export.zip: my-export/train: 1 image(s) without a mask: "),
    ("png-mask-semantic", shrink_semantic_mask, f"size_mismatch in {export_name('P001_F01')}: export.zip: "
                                                f"my-export/train/{STEM}_mask.png: mask is 5x5 but its image is 32x24"),
    ("yolov8", break_yolo_line, f"export.zip: my-export/train/labels/{STEM}.txt:1: not a class id followed by numbers"),
])
def test_errors_inside_a_zip_name_the_zip(tmp_path: Path, export_format: str, breakage, message: str):
    export = WRITERS[export_format](tmp_path / "export")
    breakage(export)
    archive = zipped(export, tmp_path / "export.zip", wrap="my-export")
    with pytest.raises(ValueError) as error:  # IngestError, or FrameReadError for the image
        run_ingest(archive, tmp_path)
    text = str(error.value)
    assert message in text.replace(str(archive), "export.zip"), text
    assert "trus-export-" not in text  # the temporary folder the zip was extracted to
    assert isinstance(error.value, QualityError) == (breakage is shrink_semantic_mask)
    assert not (tmp_path / "out").exists()


def test_errors_in_a_roboflow_download_name_the_version(tmp_path: Path, monkeypatch):
    from pipeline.config import RoboflowParams
    from tests.fake_roboflow import FakeRoboflow, zip_folder

    export = write_coco_export(tmp_path / "export")
    path = export / "train" / "_annotations.coco.json"
    payload = json.loads(path.read_text())
    payload["annotations"][0]["segmentation"][0][5] = None
    path.write_text(json.dumps(payload))
    key = "rf_Live_layoutK3y"
    with FakeRoboflow(key, {"coco-segmentation": zip_folder(export)}) as fake:
        monkeypatch.setenv("API_URL", fake.url)
        monkeypatch.setenv("ROBOFLOW_API_KEY", key)
        monkeypatch.setenv("ROBOFLOW_CONFIG_DIR", str(tmp_path / "no-roboflow-config.json"))
        data = DataParams(source="roboflow", roboflow=RoboflowParams("hospital-urology", "prostate-trus", 1, 60.0))
        with pytest.raises(ValueError) as error:
            ingest(data, QcParams(), tmp_path / "out", tmp_path / "qc.json", progress=False)
    assert str(error.value) == ("roboflow:hospital-urology/prostate-trus/1: train/_annotations.coco.json: "
                                "annotations[0].segmentation[0][5]: null is not a number")
