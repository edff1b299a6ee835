"""Roboflow "COCO Segmentation" exports: discovery, class mapping by name, rasterising.

Quirks handled (see shared/DESIGN.md): category 0 is the project's superclass with no
annotations, so classes are mapped by name; ``area`` is the bbox area and is ignored;
image ids restart in every split; frames may have no annotation at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from pipeline.ingest.names import ExportName, parse_export_name

ANNOTATIONS_FILE = "_annotations.coco.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point precision for polygon vertices


class IngestError(ValueError):
    """An export is missing, malformed or inconsistent; the message names the file."""


@dataclass(frozen=True)
class ExportFrame:
    """One image of an export with its polygons.

    Attributes:
        image_path: the exported JPEG/PNG.
        split: the export folder it came from (Roboflow's own train/valid/test).
        name: the parsed Roboflow file name (original name and hash).
        width, height: image size the annotations refer to, px.
        polygons: per output channel, a list of (N, 2) float32 x, y polygons in px.
    """

    image_path: Path
    split: str
    name: ExportName
    width: int
    height: int
    polygons: tuple[tuple[np.ndarray, ...], ...] = field(default=())

    @property
    def annotated(self) -> bool:
        """True when any class has a polygon."""
        return any(self.polygons)


def find_annotation_files(root: Path) -> list[Path]:
    """The ``_annotations.coco.json`` of every split folder below ``root`` (or in it).

    Raises:
        IngestError: none found, or a folder holds images but no annotations file.
    """
    if not root.is_dir():
        raise IngestError(f"{root}: no such export folder")
    files = sorted(root.glob(f"*/{ANNOTATIONS_FILE}")) or sorted(root.glob(ANNOTATIONS_FILE))
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        has_images = any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())
        if has_images and not (folder / ANNOTATIONS_FILE).is_file():
            raise IngestError(f"{folder}: images but no {ANNOTATIONS_FILE} (is this a COCO Segmentation export?)")
    if not files:
        raise IngestError(f"{root}: no {ANNOTATIONS_FILE} found; expected the train/, valid/, test/ "
                          "folders of a Roboflow COCO Segmentation export")
    return files


def _load_json(path: Path) -> dict:
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IngestError(f"{path}: not valid JSON ({error})") from error
    for key in ("images", "annotations", "categories"):
        if not isinstance(payload.get(key), list):
            raise IngestError(f"{path}: no '{key}' list; not a COCO export")
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
        raise IngestError(f"{path}: class(es) {', '.join(missing)} not in the export; "
                          f"it has {', '.join(sorted(by_name)) or 'no classes'}")
    return {cid: channel for channel, name in enumerate(classes) for cid in by_name[name]}


def _polygons_of(path: Path, annotation: dict) -> list[np.ndarray]:
    segmentation = annotation.get("segmentation")
    if not isinstance(segmentation, list):
        raise IngestError(f"{path}: annotation {annotation.get('id')} has no polygon segmentation "
                          "(RLE is not a Roboflow polygon export)")
    polygons = []
    for flat in segmentation:
        points = np.asarray(flat, dtype=np.float32)
        if points.size >= 6 and points.size % 2 == 0:
            polygons.append(points.reshape(-1, 2))
    return polygons


def read_split(path: Path, classes: Sequence[str]) -> list[ExportFrame]:
    """Reads one split's ``_annotations.coco.json``.

    Raises:
        IngestError: bad JSON, a class missing from the categories, or listed images
            missing from the folder (all of them named, with the count).
    """
    payload = _load_json(path)
    channel_of = _channel_of_category(path, payload["categories"], classes)
    polygons: dict[int, list[list[np.ndarray]]] = {}
    for annotation in payload["annotations"]:
        channel = channel_of.get(int(annotation.get("category_id", -1)))
        if channel is not None:
            per_class = polygons.setdefault(int(annotation["image_id"]), [[] for _ in classes])
            per_class[channel].extend(_polygons_of(path, annotation))
    frames, missing = [], []
    for image in payload["images"]:
        image_path = path.parent / str(image["file_name"])
        if not image_path.is_file():
            missing.append(image["file_name"])
            continue
        per_class = polygons.get(int(image["id"]), [[] for _ in classes])
        frames.append(ExportFrame(image_path, path.parent.name, parse_export_name(image_path.name),
                                  int(image["width"]), int(image["height"]),
                                  tuple(tuple(p) for p in per_class)))
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise IngestError(f"{path}: {len(missing)} of {len(payload['images'])} listed images are missing "
                          f"from {path.parent}: {shown}")
    return frames


def read_coco_export(root: Path, classes: Sequence[str]) -> list[ExportFrame]:
    """Reads every split of a COCO Segmentation export folder, in a stable order."""
    return [frame for path in find_annotation_files(root) for frame in read_split(path, classes)]


def export_info(root: Path) -> dict:
    """The COCO ``info`` block of the export's first split (description, version, url...)."""
    info = _load_json(find_annotation_files(root)[0]).get("info", {})
    return info if isinstance(info, dict) else {}


def rasterise(frame: ExportFrame) -> np.ndarray:
    """Fills the frame's polygons into masks.

    Returns:
        (C, height, width) bool, one mask per output channel (union of its polygons).
    """
    masks = np.zeros((len(frame.polygons), frame.height, frame.width), np.uint8)
    scale = 1 << SUBPIXEL_BITS
    for channel, polygons in enumerate(frame.polygons):
        if polygons:
            points = [np.rint(p * scale).astype(np.int32) for p in polygons]
            cv2.fillPoly(masks[channel], points, 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return masks.astype(bool)
