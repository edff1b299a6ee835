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
    * Each line is one object with one ring (YOLO has no holes).
    * Boxes are not outlines. An export whose every line is a box (Roboflow's
      object-detection YOLO export) is refused, saying to export the instance-segmentation
      version. In a mixed export a box line is not drawn (a rectangle would teach the
      network a wrong outline) and is an ``empty_mask`` finding naming the file and line,
      as a COCO box without a polygon is.
    * A class id beyond ``data.yaml``'s names is an ``unknown_category`` finding (the line
      is not drawn), as a COCO category id that the file does not declare is.
    * The split paths in ``data.yaml`` are ignored: Roboflow writes them inconsistently
      (``../train/images`` or ``<dataset>/train/images``); the split folders are found
      beside ``data.yaml`` as ``*/images``.
    * An image without a label file has no annotations; a label file without its image,
      or a split without ``labels/``, is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from pipeline.ingest.coco import IMAGE_SUFFIXES
from pipeline.ingest.names import is_hidden, parse_export_name, shown
from pipeline.ingest.records import ExportContents, ExportFrame, IngestError, ReadFinding, Shape
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


@dataclass(frozen=True)
class LabelLine:
    """One object of a label file: its line number, class id and normalised coordinates (flat)."""

    number: int
    class_id: int
    coords: np.ndarray

    @property
    def is_box(self) -> bool:
        """A ``class cx cy w h`` box rather than a polygon."""
        return len(self.coords) == 4


def parse_label_line(path: Path, number: int, line: str) -> LabelLine | None:
    """One label line; None for a blank line.

    Raises:
        IngestError: not a class id (>= 0) followed by 4 numbers or by 3 or more x y pairs,
            all finite (file and line named).
    """
    tokens = line.split()
    if not tokens:
        return None
    where = f"{shown(path)}:{number}"
    try:
        class_id, coords = int(tokens[0]), np.array(tokens[1:], np.float64)
    except ValueError:
        raise IngestError(f"{where}: not a class id followed by numbers: {line.strip()!r}") from None
    if class_id < 0:
        raise IngestError(f"{where}: class id {class_id} is negative: {line.strip()!r}")
    if not np.isfinite(coords).all() or not (len(coords) == 4 or (len(coords) >= 6 and len(coords) % 2 == 0)):
        raise IngestError(f"{where}: expected 'class x1 y1 x2 y2 x3 y3 ...' or 'class cx cy w h', "
                          f"got {len(coords)} coordinate(s): {line.strip()!r}")
    return LabelLine(number, class_id, coords)


def read_labels(path: Path) -> list[LabelLine]:
    """Every object of one label file (none when the file does not exist).

    Raises:
        IngestError: an unreadable file or a malformed line (file and line named).
    """
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise IngestError(f"{shown(path)}: not a readable label file ({error})") from error
    return [obj for number, line in enumerate(lines, start=1) if (obj := parse_label_line(path, number, line))]


def split_labels(folder: Path) -> dict[Path, list[LabelLine]]:
    """Each image of a split folder's ``images/`` with the objects of its ``labels/`` file.

    Raises:
        IngestError: no ``labels/``, label files without their image, bad label files.
    """
    images = {p.stem: p for p in sorted((folder / "images").iterdir())
              if p.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(p)}
    labels = folder / "labels"
    if not labels.is_dir():
        raise IngestError(f"{shown(folder)}: images/ but no labels/ folder (is this a YOLO export?)")
    orphans = sorted(p.name for p in labels.glob("*.txt") if p.stem not in images and not is_hidden(p))
    if orphans:
        raise IngestError(f"{shown(labels)}: {len(orphans)} label file(s) without an image: {name_some(orphans)}")
    return {image: read_labels(labels / f"{stem}.txt") for stem, image in images.items()}


def refuse_boxes_only(data_file: Path, labels: list[LabelLine]) -> None:
    """Raises IngestError when the export has label lines but not one polygon (an object-detection export)."""
    if labels and all(line.is_box for line in labels):
        raise IngestError(f"{shown(data_file)}: the export has boxes but no polygons ({len(labels)} label line(s), "
                          "all 'class cx cy w h'): it is an object-detection export; export the instance-segmentation "
                          "version (YOLOv8 of a segmentation project: 'class x1 y1 x2 y2 ...' lines)")


def _place(line: LabelLine, image: Path, names: Sequence[str], channel_of: dict[int, int],
           size: tuple[int, int]) -> tuple[int, Shape] | ReadFinding | None:
    """Where one label line goes: (channel, shape in px), a finding saying why it is not drawn, or None.

    None is a class not asked for; ``size`` is the image's (width, height) in px.
    """
    where = f"{image.parent.parent.name}/labels/{image.stem}.txt:{line.number}"
    if line.class_id >= len(names):
        return ReadFinding("unknown_category", image.name, f"{where}: class id {line.class_id} is not among "
                                                           f"{DATA_FILE}'s {len(names)} names; not drawn")
    channel = channel_of.get(line.class_id)
    if channel is None:
        return None
    if line.is_box:
        return ReadFinding("empty_mask", image.name, f"{where} ({names[line.class_id]}): a box without a polygon; "
                                                     "not drawn")
    return channel, ((line.coords.reshape(-1, 2) * size).astype(np.float32),)


def split_frames(labels: dict[Path, list[LabelLine]], names: Sequence[str], channel_of: dict[int, int],
                 n_classes: int) -> tuple[list[ExportFrame], list[ReadFinding]]:
    """The frames of one split folder and what could not be drawn.

    Args:
        labels: each image with its label lines (:func:`split_labels`).
        names: ``data.yaml``'s class names, by class id.
        channel_of: class id -> output channel, for the requested classes only.
        n_classes: number of output channels.

    Raises:
        IngestError: an unreadable image.
    """
    frames, findings = [], []
    for image, lines in labels.items():
        width, height = image_size(image)
        objects: list[list[Shape]] = [[] for _ in range(n_classes)]
        for line in lines:
            placed = _place(line, image, names, channel_of, (width, height))
            if isinstance(placed, ReadFinding):
                findings.append(placed)
            elif placed is not None:
                objects[placed[0]].append(placed[1])
        frames.append(ExportFrame(image, image.parent.parent.name, parse_export_name(image.name), width, height,
                                  annotated=any(objects), shapes=tuple(tuple(o) for o in objects)))
    return frames, findings


def read_yolo_export(root: Path, classes: Sequence[str]) -> ExportContents:
    """Reads every split of a YOLOv8 segmentation export folder, in a stable order.

    Args:
        root: the export folder (holding ``data.yaml``, or one folder that does).
        classes: output channel names, mapped by name onto ``data.yaml``'s names.

    Returns:
        The frames, and the findings about lines that were not drawn.

    Raises:
        IngestError: no/bad ``data.yaml``, a requested class it lacks, no split folders,
            bad label files, an export of boxes only.
    """
    data_file = find_data_file(root)
    names = read_class_names(data_file)
    by_name: dict[str, list[int]] = {}
    for class_id, name in enumerate(names):
        by_name.setdefault(name, []).append(class_id)
    values = values_per_class(data_file, by_name, classes)
    channel_of = {class_id: channel for channel, ids in enumerate(values) for class_id in ids}
    folders = sorted(p.parent for p in data_file.parent.glob("*/images") if p.is_dir() and not is_hidden(p.parent))
    if not folders:
        raise IngestError(f"{shown(data_file.parent)}: no <split>/images/ folder beside {DATA_FILE}")
    splits = [split_labels(folder) for folder in folders]
    refuse_boxes_only(data_file, [line for split in splits for lines in split.values() for line in lines])
    frames: list[ExportFrame] = []
    findings: list[ReadFinding] = []
    for labels in splits:
        split_found = split_frames(labels, names, channel_of, len(classes))
        frames += split_found[0]
        findings += split_found[1]
    return ExportContents(tuple(frames), tuple(findings))
