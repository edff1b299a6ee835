"""Roboflow "YOLOv8" segmentation exports (``yolov8``).

Layout: ``data.yaml`` (``names`` as a list or an ``{id: name}`` dict, ``nc``) beside the
``train/``, ``valid/``, ``test/`` folders, each holding ``images/`` and ``labels/`` with one
``<image stem>.txt`` per image. A label line is ``class x1 y1 x2 y2 ...`` (a polygon) or
``class cx cy w h`` (a box), coordinates normalised to 0-1 by the image size.

Decisions:
    * Coordinates: Roboflow divides the same px coordinates it writes to COCO by the image
      width/height, so ``x_px = x * width`` (no half-pixel shift) gives exactly the COCO
      reader's coordinates (vertices in px, pixel centres at integers): a YOLO export and a
      COCO export of one Roboflow version rasterise to the same masks.
    * Each line is one object with one ring (YOLO has no holes); a box becomes a rectangle.
    * The split paths in ``data.yaml`` are ignored: Roboflow writes them inconsistently
      (``../train/images`` or ``<dataset>/train/images``); the split folders are found
      beside ``data.yaml`` as ``*/images``.
    * An image without a label file has no annotations; a label file without its image,
      or a split without ``labels/``, is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from pipeline.ingest.coco import IMAGE_SUFFIXES
from pipeline.ingest.names import is_hidden, parse_export_name, shown
from pipeline.ingest.records import ExportFrame, IngestError, Ring, Shape
from pipeline.ingest.semantic_masks import image_size, name_some, values_per_class

DATA_FILE = "data.yaml"


def find_data_file(root: Path) -> Path:
    """The export's ``data.yaml``: in ``root`` or in exactly one folder below it.

    Raises:
        IngestError: none, or several below ``root``.
    """
    if not root.is_dir():
        raise IngestError(f"{shown(root)}: no such export folder")
    found = [root / DATA_FILE] if (root / DATA_FILE).is_file() else sorted(root.glob(f"*/{DATA_FILE}"))
    if len(found) != 1:
        raise IngestError(f"{shown(root)}: {'several' if found else 'no'} {DATA_FILE} found; expected one beside the "
                          "train/, valid/, test/ folders of a Roboflow YOLOv8 export")
    return found[0]


def read_class_names(path: Path) -> list[str]:
    """The class names of ``data.yaml``, indexed by class id.

    Raises:
        IngestError: unreadable YAML, no ``names``, ids not 0..n-1, or ``nc`` disagreeing.
    """
    try:
        payload = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise IngestError(f"{shown(path)}: not readable YAML ({error})") from error
    names = payload.get("names") if isinstance(payload, dict) else None
    if isinstance(names, dict):
        by_id = {int(key): value for key, value in names.items() if str(key).isdecimal()}
        names = [by_id[i] for i in range(len(by_id))] if set(by_id) == set(range(len(names))) else None
    if not isinstance(names, list) or not names:
        raise IngestError(f"{shown(path)}: no 'names' list (or {{id: name}} with ids 0..n-1); not a YOLO export")
    if payload.get("nc", len(names)) != len(names):
        raise IngestError(f"{shown(path)}: nc is {payload['nc']} but {len(names)} names are listed")
    return [str(name) for name in names]


def box_ring(cx: float, cy: float, w: float, h: float) -> Ring:
    """The 4 corners of a ``cx cy w h`` box, in the same (normalised) units."""
    x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], np.float64)


def parse_label_line(path: Path, number: int, line: str, n_names: int) -> tuple[int, Ring] | None:
    """One label line as (class id, normalised (N, 2) ring); None for a blank line.

    Raises:
        IngestError: a class id outside ``0..n_names-1`` or a malformed line (file and line named).
    """
    tokens = line.split()
    if not tokens:
        return None
    where = f"{shown(path)}:{number}"
    try:
        class_id, coords = int(tokens[0]), np.array(tokens[1:], np.float64)
    except ValueError:
        raise IngestError(f"{where}: not a class id followed by numbers: {line.strip()!r}") from None
    if not 0 <= class_id < n_names:
        raise IngestError(f"{where}: class id {class_id} out of range; {DATA_FILE} has {n_names} names")
    if not np.isfinite(coords).all() or not (len(coords) == 4 or (len(coords) >= 6 and len(coords) % 2 == 0)):
        raise IngestError(f"{where}: expected 'class x1 y1 x2 y2 x3 y3 ...' or 'class cx cy w h', "
                          f"got {len(coords)} coordinate(s): {line.strip()!r}")
    return class_id, box_ring(*coords) if len(coords) == 4 else coords.reshape(-1, 2)


def read_labels(path: Path, n_names: int) -> list[tuple[int, Ring]]:
    """Every object of one label file (none when the file does not exist)."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    return [obj for number, line in enumerate(lines, start=1) if (obj := parse_label_line(path, number, line, n_names))]


def read_split(folder: Path, n_names: int, channel_of: dict[int, int], n_classes: int) -> list[ExportFrame]:
    """Reads one split folder's ``images/`` and ``labels/``.

    Args:
        folder: the split folder.
        n_names: number of classes in ``data.yaml``.
        channel_of: class id -> output channel, for the requested classes only.
        n_classes: number of output channels.

    Raises:
        IngestError: no ``labels/``, label files without their image, bad label lines.
    """
    images = {p.stem: p for p in sorted((folder / "images").iterdir())
              if p.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(p)}
    labels = folder / "labels"
    if not labels.is_dir():
        raise IngestError(f"{shown(folder)}: images/ but no labels/ folder (is this a YOLO export?)")
    orphans = sorted(p.name for p in labels.glob("*.txt") if p.stem not in images and not is_hidden(p))
    if orphans:
        raise IngestError(f"{shown(labels)}: {len(orphans)} label file(s) without an image: {name_some(orphans)}")
    frames = []
    for stem, image_path in images.items():
        width, height = image_size(image_path)
        objects: list[list[Shape]] = [[] for _ in range(n_classes)]
        for class_id, ring in read_labels(labels / f"{stem}.txt", n_names):
            if class_id in channel_of:
                objects[channel_of[class_id]].append(((ring * (width, height)).astype(np.float32),))
        frames.append(ExportFrame(image_path, folder.name, parse_export_name(image_path.name), width, height,
                                  annotated=any(objects), shapes=tuple(tuple(o) for o in objects)))
    return frames


def read_yolo_export(root: Path, classes: Sequence[str]) -> list[ExportFrame]:
    """Reads every split of a YOLOv8 segmentation export folder, in a stable order.

    Args:
        root: the export folder (holding ``data.yaml``, or one folder that does).
        classes: output channel names, mapped by name onto ``data.yaml``'s names.

    Raises:
        IngestError: no/bad ``data.yaml``, a requested class it lacks, no split folders,
            bad label files.
    """
    data_file = find_data_file(root)
    names = read_class_names(data_file)
    by_name: dict[str, list[int]] = {}
    for class_id, name in enumerate(names):
        by_name.setdefault(name, []).append(class_id)
    values = values_per_class(data_file, by_name, classes)
    channel_of = {class_id: channel for channel, ids in enumerate(values) for class_id in ids}
    folders = sorted(p.parent for p in data_file.parent.glob("*/images") if p.is_dir())
    if not folders:
        raise IngestError(f"{shown(data_file.parent)}: no <split>/images/ folder beside {DATA_FILE}")
    return [frame for folder in folders for frame in read_split(folder, len(names), channel_of, len(classes))]
