"""Tiny Roboflow-shaped exports written by the tests: real JPEG/PNG files, JSON/YAML/CSV as Roboflow writes them.

COCO: category 0 is the project superclass (``supercategory: "none"``), real classes start
at 1, images are ``<stem>_png.rf.<32 hex>.jpg``, ``area`` is the bbox area. YOLO: ``data.yaml``
beside ``<split>/images`` and ``<split>/labels``. Semantic masks: ``_classes.csv`` with
``Pixel Value, Class`` and no final newline, ``<stem>_mask.png`` beside each image.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import yaml

WIDTH, HEIGHT = 32, 24
CLASSES = ("gland", "lesion")


def export_name(stem: str) -> str:
    """Roboflow's file name for an uploaded ``<stem>.png``."""
    return f"{stem}_png.rf.{hashlib.md5(stem.encode()).hexdigest()}.jpg"


def write_image(path: Path, width: int = WIDTH, height: int = HEIGHT) -> None:
    """A 3-channel JPEG with a gradient (distinct per file name, so no two are duplicates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = int(hashlib.md5(path.name.encode()).hexdigest()[:6], 16)
    gray = ((np.add.outer(np.arange(height), np.arange(width)) * 3 + seed) % 200 + 20).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


def square(x: float, y: float, side: float) -> list[float]:
    """A flat COCO polygon: the square with top-left corner (x, y)."""
    return [x, y, x + side, y, x + side, y + side, x, y + side]


def coco_annotation(index: int, image_id: int, category_id: int, polygon: list[float] | None) -> dict:
    """One annotation as Roboflow writes it; ``polygon`` None gives a box without a polygon (``segmentation: []``)."""
    points = np.reshape(polygon if polygon is not None else square(4, 4, 8), (-1, 2))
    x0, y0 = points.min(axis=0)
    w, h = points.max(axis=0) - points.min(axis=0)
    return {"id": index, "image_id": image_id, "category_id": category_id, "bbox": [float(x0), float(y0), float(w),
            float(h)], "area": float(w * h), "segmentation": [polygon] if polygon is not None else [], "iscrowd": 0}


def coco_payload(stems: list[str], annotations: list[tuple[int, int, list[float] | None]],
                 classes: tuple[str, ...] = CLASSES) -> dict:
    """A split's ``_annotations.coco.json``.

    Args:
        stems: original frame names (without .png), one image each, ids 0, 1, ...
        annotations: (image id, category id, flat polygon or None for a box only).
        classes: category names of ids 1, 2, ... (id 0 is the superclass).
    """
    categories = [{"id": 0, "name": "prostate", "supercategory": "none"}]
    categories += [{"id": i, "name": name, "supercategory": "prostate"} for i, name in enumerate(classes, start=1)]
    images = [{"id": i, "license": 1, "file_name": export_name(stem), "height": HEIGHT, "width": WIDTH,
               "date_captured": "2024-01-01T00:00:00+00:00"} for i, stem in enumerate(stems)]
    return {"info": {"description": "test export"}, "licenses": [], "categories": categories, "images": images,
            "annotations": [coco_annotation(i, *a) for i, a in enumerate(annotations)]}


def write_coco_split(folder: Path, payload: object, images: list[str] | None = None) -> Path:
    """Writes ``payload`` as the split's JSON and an image for each name (default: the payload's file names)."""
    folder.mkdir(parents=True, exist_ok=True)
    if images is None:
        images = [image["file_name"] for image in payload["images"]]  # type: ignore[index]
    for name in images:
        write_image(folder / name)
    path = folder / "_annotations.coco.json"
    path.write_text(json.dumps(payload))
    return path


def write_coco_export(root: Path, payload: dict | None = None) -> Path:
    """A one-split COCO Segmentation export: two frames of two patients, gland on both, lesion on the first."""
    payload = payload or coco_payload(["P001_F01", "P002_F01"], [(0, 1, square(4, 4, 16)), (0, 2, square(8, 8, 6)),
                                                                 (1, 1, square(6, 5, 14))])
    write_coco_split(root / "train", payload)
    return root


def write_yolo_export(root: Path, labels: dict[str, str], names: tuple[str, ...] = CLASSES) -> Path:
    """A one-split YOLOv8 export: ``labels`` maps original stems to label file text."""
    (root / "train" / "labels").mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "../train/images", "val": "../valid/images",
                                                    "nc": len(names), "names": list(names)}))
    for stem, text in labels.items():
        name = export_name(stem)
        write_image(root / "train" / "images" / name)
        (root / "train" / "labels" / f"{Path(name).stem}.txt").write_text(text)
    return root


def write_semantic_export(root: Path, masks: dict[str, np.ndarray],
                          classes: tuple[str, ...] = ("background", *CLASSES)) -> Path:
    """A one-split Semantic Segmentation Masks export: ``masks`` maps original stems to uint8 label images."""
    split = root / "train"
    split.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(f"{value}, {name}" for value, name in enumerate(classes))
    (split / "_classes.csv").write_text(f"Pixel Value, Class\n{rows}")  # no final newline, as Roboflow's
    for stem, label in masks.items():
        name = export_name(stem)
        write_image(split / name, label.shape[1], label.shape[0])
        cv2.imwrite(str(split / f"{Path(name).stem}_mask.png"), label)
    return root


def zipped(folder: Path, archive: Path, wrap: str | None = None) -> Path:
    """Zips the export ``folder`` as ``archive``; ``wrap``: inside one folder of that name ("compress folder")."""
    if wrap is None:
        return Path(shutil.make_archive(str(archive.with_suffix("")), "zip", folder))
    staging = archive.parent / f"{archive.stem}-staging"
    shutil.copytree(folder, staging / wrap)
    made = Path(shutil.make_archive(str(archive.with_suffix("")), "zip", staging))
    shutil.rmtree(staging)
    return made
