"""Roboflow "Semantic Segmentation Masks" exports (``png-mask-semantic``).

Layout (see ``shared/fixtures/roboflow-real/DHCN_dataset.v1i.png-mask-semantic``): every
split folder holds ``_classes.csv`` (header ``Pixel Value, Class`` with a space after each
comma, maybe no trailing newline) and ``<stem>.jpg`` + ``<stem>_mask.png`` pairs; the mask
is 8-bit single-channel, pixel value = class index, 0 = background. Classes are mapped by
name, so background is a class only when asked for by name. Mask pixel values that
``_classes.csv`` does not list belong to no class: each mask holding some is an
``unknown_mask_value`` finding (never silently background).

The small helpers ``image_size``, ``name_some`` and ``values_per_class`` are shared with
the YOLO reader.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline.config import setting
from pipeline.ingest.coco import IMAGE_SUFFIXES
from pipeline.ingest.names import is_hidden, parse_export_name, shown
from pipeline.ingest.records import ExportContents, ExportFrame, IngestError, ReadFinding

CLASSES_FILE = "_classes.csv"
MASK_SUFFIX = "_mask.png"
_HEADER = ("pixel value", "class")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image from its header, without decoding the pixels.

    Raises:
        IngestError: missing or not an image.
    """
    try:
        with Image.open(path) as image:
            return image.size
    except OSError as error:  # PIL's UnidentifiedImageError is an OSError
        raise IngestError(f"{shown(path)}: not a readable image ({error})") from error


def name_some(names: Sequence[str], limit: int = 5) -> str:
    """``a, b, c`` or ``a, b, c, d, e and 3 more``: enough names to find the problem."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def values_per_class(source: Path, by_name: dict[str, list[int]], classes: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    """The export's values (class ids or pixel values) of each output channel, mapped by name.

    Args:
        source: the file that declares the export's classes, for the error message.
        by_name: the export's class names and the values each one has.
        classes: output channel names (case-sensitive).

    Raises:
        IngestError: a requested class that the export does not have (listing what it has).
    """
    missing = [name for name in classes if name not in by_name]
    if missing:
        raise IngestError(f"{shown(source)}: class(es) {', '.join(missing)} not in the export; it has "
                          f"{', '.join(sorted(by_name)) or 'no classes'}; choose {setting('data.classes')} among them")
    return tuple(tuple(by_name[name]) for name in classes)


def read_classes_csv(path: Path) -> dict[str, list[int]]:
    """Parses ``_classes.csv`` into class name -> pixel values.

    Tolerates a BOM, spaces after commas, quoted names, CRLF and a missing trailing newline.

    Raises:
        IngestError: unreadable, not the ``Pixel Value, Class`` header, a bad row, or a
            pixel value listed twice (line named).
    """
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines(), skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise IngestError(f"{shown(path)}: unreadable ({error})") from error
    if not rows or tuple(cell.strip().lower() for cell in rows[0]) != _HEADER:
        raise IngestError(f"{shown(path)}: header is not 'Pixel Value, Class'; not a semantic segmentation mask export")
    by_name: dict[str, list[int]] = {}
    line_of: dict[int, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not row[0].strip().isdecimal() or not row[1].strip():
            raise IngestError(f"{shown(path)}:{number}: expected '<pixel value>, <class>', got {','.join(row)!r}")
        value = int(row[0])
        if value in line_of:
            raise IngestError(f"{shown(path)}:{number}: pixel value {value} is already listed on line {line_of[value]}")
        line_of[value] = number
        by_name.setdefault(row[1].strip(), []).append(value)
    return by_name


def find_split_folders(root: Path) -> list[Path]:
    """The folders below ``root`` (or ``root`` itself) holding a ``_classes.csv``.

    Raises:
        IngestError: none found, or a folder holds images but no ``_classes.csv``.
    """
    if not root.is_dir():
        raise IngestError(f"{shown(root)}: no such export folder")
    folders = sorted(p.parent for p in root.glob(f"*/{CLASSES_FILE}")) or \
        ([root] if (root / CLASSES_FILE).is_file() else [])
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not is_hidden(p) and p not in folders):
        if any(p.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(p) for p in folder.iterdir()):
            raise IngestError(f"{shown(folder)}: images but no {CLASSES_FILE} (is this a semantic segmentation mask export?)")
    if not folders:
        raise IngestError(f"{shown(root)}: no {CLASSES_FILE} found; expected the train/, valid/, test/ "
                          "folders of a Roboflow Semantic Segmentation Masks export")
    return folders


def pair_images_and_masks(folder: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of a split folder, sorted by image name.

    Raises:
        IngestError: images without their mask or masks without their image (named, with counts).
    """
    files = sorted(p for p in folder.iterdir() if p.is_file() and not is_hidden(p))
    masks = {p.name[: -len(MASK_SUFFIX)]: p for p in files if p.name.endswith(MASK_SUFFIX)}
    images = {p.stem: p for p in files if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.endswith(MASK_SUFFIX)}
    problems = [f"{len(names)} {what}: {name_some(names)}" for what, names in (
        ("image(s) without a mask", [images[s].name for s in sorted(images.keys() - masks.keys())]),
        ("mask(s) without an image", [masks[s].name for s in sorted(masks.keys() - images.keys())])) if names]
    if problems:
        raise IngestError(f"{shown(folder)}: {'; '.join(problems)}")
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def pixel_counts(mask_path: Path) -> dict[int, int]:
    """The pixel values of a label mask and how many pixels hold each (first channel of a 3-channel mask).

    Raises:
        IngestError: the mask cannot be read.
    """
    label = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise IngestError(f"{shown(mask_path)}: mask file missing or unreadable")
    values, counts = np.unique(label[..., 0] if label.ndim == 3 else label, return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def unknown_values(mask_path: Path, counts: dict[int, int], declared: set[int], image_name: str) -> list[ReadFinding]:
    """An ``unknown_mask_value`` finding when the mask holds values that ``_classes.csv`` does not list."""
    unknown = sorted(set(counts) - declared)
    if not unknown:
        return []
    pixels = sum(counts[value] for value in unknown)
    split = mask_path.parent.name
    return [ReadFinding("unknown_mask_value", image_name, f"{split}/{mask_path.name}: pixel value(s) "
                        f"{', '.join(map(str, unknown))} ({pixels} px) not in {split}/{CLASSES_FILE}; in no class")]


def read_split(folder: Path, classes: Sequence[str]) -> tuple[list[ExportFrame], list[ReadFinding]]:
    """Reads one split folder: its ``_classes.csv`` and every image/mask pair.

    Returns:
        The frames, and an ``unknown_mask_value`` finding for each mask holding values
        that ``_classes.csv`` does not list.
    """
    csv_path = folder / CLASSES_FILE
    by_name = read_classes_csv(csv_path)
    values = values_per_class(csv_path, by_name, classes)
    declared = {value for listed in by_name.values() for value in listed}
    wanted = {value for channel in values for value in channel}
    frames, findings = [], []
    for image_path, mask_path in pair_images_and_masks(folder):
        width, height = image_size(image_path)
        counts = pixel_counts(mask_path)
        findings += unknown_values(mask_path, counts, declared, image_path.name)
        frames.append(ExportFrame(image_path, folder.name, parse_export_name(image_path.name), width, height,
                                  annotated=bool(wanted & set(counts)), mask_path=mask_path, mask_values=values))
    return frames, findings


def read_semantic_export(root: Path, classes: Sequence[str]) -> ExportContents:
    """Reads every split of a Semantic Segmentation Masks export folder, in a stable order.

    Args:
        root: the export folder (holding ``train/``, ``valid/``, ``test/``).
        classes: output channel names, mapped by name onto each split's ``_classes.csv``.

    Returns:
        One frame per image (masks are read again by :meth:`ExportFrame.masks`, which also
        checks that each mask is its image's size), and the ``unknown_mask_value`` findings.

    Raises:
        IngestError: missing or malformed ``_classes.csv``, a requested class it lacks,
            unpaired files, an unreadable mask.
    """
    frames: list[ExportFrame] = []
    findings: list[ReadFinding] = []
    for folder in find_split_folders(root):
        split_frames, split_findings = read_split(folder, classes)
        frames += split_frames
        findings += split_findings
    return ExportContents(tuple(frames), tuple(findings))
