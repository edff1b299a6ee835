"""Roboflow "COCO Segmentation" exports: discovery, class mapping by name, polygons per frame.

Quirks handled (see shared/DESIGN.md): category 0 is the project's superclass with no
annotations, so classes are mapped by name; ``area`` is the bbox area and is ignored;
image ids restart in every split; frames may have no annotation at all. Each JSON file is
checked up front (:mod:`pipeline.ingest.coco_json`).

Nothing read is dropped without a word. An export whose annotations are all boxes without
a polygon (Roboflow's object-detection "COCO" export) is refused; otherwise each such
annotation of a requested class is an ``empty_mask`` finding. An annotation of a category
the file does not declare is ``unknown_category``; one whose ``image_id`` is not among the
images, ``annotation_without_image``; an image file in a split folder that the JSON does
not list, ``unlisted_image``. Categories of classes not asked for are skipped: not findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.config import setting
from pipeline.ingest.coco_json import CocoAnnotation, CocoFile, CocoImage, load_coco_file
from pipeline.ingest.names import is_hidden, parse_export_name, shown
from pipeline.ingest.records import ExportContents, ExportFrame, IngestError, ReadFinding, Shape

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


def channel_of_category(coco: CocoFile, classes: Sequence[str]) -> dict[int, int]:
    """Maps category ids to output channels by class name (the superclass is never a class).

    Raises:
        IngestError: a requested class that no category has (listing what the file has).
    """
    by_name: dict[str, list[int]] = {}
    for category in coco.categories:
        if not category.superclass:
            by_name.setdefault(category.name, []).append(category.id)
    missing = [name for name in classes if name not in by_name]
    if missing:
        raise IngestError(f"{shown(coco.path)}: class(es) {', '.join(missing)} not in the export; it has "
                          f"{', '.join(sorted(by_name)) or 'no classes'}; choose {setting('data.classes')} among them")
    return {cid: channel for channel, name in enumerate(classes) for cid in by_name[name]}


def refuse_boxes_only(root: Path, files: Sequence[CocoFile]) -> None:
    """Raises IngestError when the export has annotations but not one polygon (an object-detection export)."""
    annotations = [annotation for coco in files for annotation in coco.annotations]
    if annotations and not any(annotation.rings for annotation in annotations):
        boxes = sum(annotation.has_box for annotation in annotations)
        raise IngestError(f"{shown(root)}: the export has boxes but no polygons ({len(annotations)} annotation(s), "
                          f"{boxes} with a bbox, none with a segmentation polygon): it is an object-detection "
                          "export; export the version as \"COCO Segmentation\"")


def _place(annotation: CocoAnnotation, source: str, images: dict[int, CocoImage], known: set[int],
           channel_of: dict[int, int], classes: Sequence[str]) -> tuple[int, Shape] | ReadFinding | None:
    """Where one annotation goes.

    Args:
        annotation: the annotation.
        source: its file for messages, ``train/_annotations.coco.json``.
        images: the file's images by id.
        known: the file's category ids.
        channel_of: category id -> output channel, requested classes only.
        classes: output channel names.

    Returns:
        (channel, shape); a finding saying why it is not drawn; or None for a class not asked for.
    """
    where = f"{source}: annotations[{annotation.index}]"
    image = images.get(annotation.image_id)
    if image is None:
        return ReadFinding("annotation_without_image", "", f"{where}: image_id {annotation.image_id} is not "
                                                           "among the images; not used")
    if annotation.category_id not in known:
        return ReadFinding("unknown_category", image.file_name, f"{where}: category_id {annotation.category_id} "
                                                                "is not among the categories; not drawn")
    channel = channel_of.get(annotation.category_id)
    if channel is None:
        return None
    if not annotation.rings:
        what = "a box without a polygon" if annotation.has_box else "neither a polygon nor a box"
        return ReadFinding("empty_mask", image.file_name, f"{where} ({classes[channel]}): {what}; not drawn")
    return channel, annotation.rings


def unlisted_images(coco: CocoFile) -> list[ReadFinding]:
    """An ``unlisted_image`` finding for each image file in the split folder that the JSON does not list."""
    listed = {Path(image.file_name).as_posix() for image in coco.images}
    files = sorted(p.name for p in coco.path.parent.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not is_hidden(p))
    split = coco.path.parent.name
    return [ReadFinding("unlisted_image", name, f"in {split}/ but not listed in {split}/{ANNOTATIONS_FILE}; not used")
            for name in files if name not in listed]


def read_split(coco: CocoFile, classes: Sequence[str]) -> tuple[list[ExportFrame], list[ReadFinding]]:
    """The frames of one checked ``_annotations.coco.json`` and what could not be used.

    Raises:
        IngestError: a class missing from the categories, or listed images missing from
            the folder (all of them named, with the count).
    """
    channel_of = channel_of_category(coco, classes)
    images = {image.id: image for image in coco.images}
    known = {category.id for category in coco.categories}
    source = f"{coco.path.parent.name}/{ANNOTATIONS_FILE}"
    shapes: dict[int, list[list[Shape]]] = {}
    findings: list[ReadFinding] = []
    for annotation in coco.annotations:
        placed = _place(annotation, source, images, known, channel_of, classes)
        if isinstance(placed, ReadFinding):
            findings.append(placed)
        elif placed is not None:
            shapes.setdefault(annotation.image_id, [[] for _ in classes])[placed[0]].append(placed[1])
    folder = coco.path.parent
    missing = [image.file_name for image in coco.images if not (folder / image.file_name).is_file()]
    if missing:
        listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise IngestError(f"{shown(coco.path)}: {len(missing)} of {len(coco.images)} listed images are missing "
                          f"from {shown(folder)}: {listed}")
    frames = []
    for image in coco.images:
        per_class = shapes.get(image.id, [[] for _ in classes])
        frames.append(ExportFrame(folder / image.file_name, folder.name, parse_export_name(image.file_name),
                                  image.width, image.height, annotated=any(per_class),
                                  shapes=tuple(tuple(objects) for objects in per_class), tags=image.tags))
    return frames, findings + unlisted_images(coco)


def read_coco_export(root: Path, classes: Sequence[str]) -> ExportContents:
    """Reads every split of a COCO Segmentation export folder, in a stable order.

    Args:
        root: the export folder (holding ``train/``, ``valid/``, ``test/``, or the JSON itself).
        classes: output channel names, mapped by name onto each file's categories.

    Returns:
        The frames, the findings about what could not be used, and the first file's ``info``.

    Raises:
        IngestError: no annotations file, a malformed one (file and JSON path named), an
            export of boxes only, a requested class missing, listed images missing.
    """
    files = [load_coco_file(path) for path in find_annotation_files(root)]
    refuse_boxes_only(root, files)
    frames: list[ExportFrame] = []
    findings: list[ReadFinding] = []
    for coco in files:
        split_frames, split_findings = read_split(coco, classes)
        frames += split_frames
        findings += split_findings
    return ExportContents(tuple(frames), tuple(findings), files[0].info)
