"""Roboflow "COCO Segmentation" exports: discovery, class mapping by name, rasterising.

Quirks handled (see shared/DESIGN.md): category 0 is the project's superclass with no
annotations, so classes are mapped by name; ``area`` is the bbox area and is ignored;
image ids restart in every split; frames may have no annotation at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.config import setting
from pipeline.ingest.names import is_hidden, parse_export_name, shown
from pipeline.ingest.records import ExportFrame, IngestError, Shape

ANNOTATIONS_FILE = "_annotations.coco.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def find_annotation_files(root: Path) -> list[Path]:
    """The ``_annotations.coco.json`` of every split folder below ``root`` (or in it).

    Raises:
        IngestError: none found, or a folder holds images but no annotations file.
    """
    if not root.is_dir():
        raise IngestError(f"{shown(root)}: no such export folder")
    files = sorted(root.glob(f"*/{ANNOTATIONS_FILE}")) or sorted(root.glob(ANNOTATIONS_FILE))
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not is_hidden(p)):
        has_images = any(p.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(p) for p in folder.iterdir())
        if has_images and not (folder / ANNOTATIONS_FILE).is_file():
            raise IngestError(f"{shown(folder)}: images but no {ANNOTATIONS_FILE} (is this a COCO Segmentation export?)")
    if not files:
        raise IngestError(f"{shown(root)}: no {ANNOTATIONS_FILE} found; expected the train/, valid/, test/ "
                          "folders of a Roboflow COCO Segmentation export")
    return files


def _load_json(path: Path) -> dict:
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IngestError(f"{shown(path)}: not valid JSON ({error})") from error
    for key in ("images", "annotations", "categories"):
        if not isinstance(payload.get(key), list):
            raise IngestError(f"{shown(path)}: no '{key}' list; not a COCO export")
    return payload


def _channel_of_category(path: Path, categories: list[dict], classes: Sequence[str]) -> dict[int, int]:
    """Maps category ids to output channels by class name (the superclass is never a class)."""
    by_name: dict[str, list[int]] = {}
    for category in categories:
        if category.get("supercategory") == "none" and category.get("id") == 0:
            continue
        by_name.setdefault(str(category.get("name")), []).append(int(category["id"]))
    missing = [name for name in classes if name not in by_name]
    if missing:
        raise IngestError(f"{shown(path)}: class(es) {', '.join(missing)} not in the export; it has "
                          f"{', '.join(sorted(by_name)) or 'no classes'}; choose {setting('data.classes')} among them")
    return {cid: channel for channel, name in enumerate(classes) for cid in by_name[name]}


def _shape_of(path: Path, annotation: dict) -> Shape:
    """One annotation's rings; several polygons are parts of one object, a ring inside another a hole."""
    segmentation = annotation.get("segmentation")
    if not isinstance(segmentation, list):
        raise IngestError(f"{shown(path)}: annotation {annotation.get('id')} has no polygon segmentation "
                          "(RLE is not a Roboflow polygon export)")
    rings = []
    for flat in segmentation:
        points = np.asarray(flat, dtype=np.float32)
        if points.size % 2 != 0:
            raise IngestError(f"{shown(path)}: annotation {annotation.get('id')} has an odd number of polygon coordinates")
        rings.append(points.reshape(-1, 2))
    return tuple(rings)


def read_split(path: Path, classes: Sequence[str]) -> list[ExportFrame]:
    """Reads one split's ``_annotations.coco.json``.

    Raises:
        IngestError: bad JSON, a class missing from the categories, or listed images
            missing from the folder (all of them named, with the count).
    """
    payload = _load_json(path)
    channel_of = _channel_of_category(path, payload["categories"], classes)
    shapes: dict[int, list[list[Shape]]] = {}
    for annotation in payload["annotations"]:
        channel = channel_of.get(int(annotation.get("category_id", -1)))
        if channel is not None:
            per_class = shapes.setdefault(int(annotation["image_id"]), [[] for _ in classes])
            per_class[channel].append(_shape_of(path, annotation))
    frames, missing = [], []
    for image in payload["images"]:
        image_path = path.parent / str(image["file_name"])
        if not image_path.is_file():
            missing.append(image["file_name"])
            continue
        per_class = shapes.get(int(image["id"]), [[] for _ in classes])
        frames.append(ExportFrame(image_path, path.parent.name, parse_export_name(image_path.name),
                                  int(image["width"]), int(image["height"]), annotated=any(per_class),
                                  shapes=tuple(tuple(objects) for objects in per_class)))
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise IngestError(f"{shown(path)}: {len(missing)} of {len(payload['images'])} listed images are missing "
                          f"from {shown(path.parent)}: {listed}")
    return frames


def read_coco_export(root: Path, classes: Sequence[str]) -> list[ExportFrame]:
    """Reads every split of a COCO Segmentation export folder, in a stable order."""
    return [frame for path in find_annotation_files(root) for frame in read_split(path, classes)]


def export_info(root: Path) -> dict:
    """The COCO ``info`` block of the export's first split (description, version, url...)."""
    info = _load_json(find_annotation_files(root)[0]).get("info", {})
    return info if isinstance(info, dict) else {}
