"""A corrections folder: the clinicians' masks as Roboflow "COCO Segmentation" annotations.

Layout of the folder :func:`write_corrections` makes (the images stay in the Roboflow project;
none is copied)::

    FOLDER/_annotations.coco.json          every corrected frame, one COCO file
    FOLDER/frames/<file name>.coco.json    one frame's COCO file: what the upload sends
                                           with the client's ``save_annotation``
    FOLDER/.trus-output.json               marker: the folder was written by write_corrections

The COCO files are what Roboflow's own exports and the client's folder import use: category
0 is a superclass (``supercategory: "none"``, no annotations of its own), then one category
per class named exactly as the model's classes; images by their original file name with
width and height, px; one annotation per part of a class mask (polygon rings as
:mod:`pipeline.corrections.polygons` encodes them, so holes survive), with ``bbox`` [x, y,
width, height] px (the pixel squares covered, pixel centres at integers), ``area`` (pixel
count) and ``iscrowd`` 0. A frame whose masks are all empty is listed with no annotation in
``_annotations.coco.json``; its own file carries the ``roboflow`` client's placeholder for
an image without objects (an annotation of no image, category 0, empty segmentation), which
the client sends so that Roboflow reads the file as COCO; readers skip it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline.corrections.frames import (
    CorrectedFrame,
    CorrectionsError,
    check_file_name,
)
from pipeline.corrections.polygons import DEFAULT_TOLERANCE_PX, keyhole_ring, mask_parts
from pipeline.files.atomic import write_text_atomically
from pipeline.files.output_folder import output_folder
from pipeline.imaging.polygons import fill_rings
from pipeline.ingest.coco_json import CocoFile, MalformedJson, parse_coco

ANNOTATIONS_FILE = "_annotations.coco.json"
FRAMES_FOLDER = "frames"
FRAME_SUFFIX = ".coco.json"
COMMAND = "write_corrections"
"""Recorded in the folder's marker: only an earlier corrections folder may be replaced (with ``force``)."""
SUPERCLASS = "trus-structures"
"""Name of category 0, the superclass (Roboflow's exports name it after the project)."""
COORDINATE_DECIMALS = 3
PLACEHOLDER_ID = 999999999
EMPTY_PLACEHOLDER = {"id": PLACEHOLDER_ID, "image_id": PLACEHOLDER_ID, "category_id": 0, "area": 1,
                     "segmentation": [], "iscrowd": 0}
"""The ``roboflow`` client's annotation for an image without objects (``util/folderparser.py``), verbatim."""
INFO = {"description": "clinician corrections of trus-seg masks", "contributor": "trus-seg", "version": "1"}


def frame_document_path(folder: Path, file_name: str) -> Path:
    """Where a corrections folder keeps the single-image COCO file of ``file_name``."""
    return Path(folder) / FRAMES_FOLDER / f"{file_name}{FRAME_SUFFIX}"


def coco_categories(classes: Sequence[str]) -> list[dict]:
    """Category 0 the superclass, then classes 1..C named as given.

    Raises:
        CorrectionsError: a class named like the superclass.
    """
    if SUPERCLASS in classes:
        raise CorrectionsError(f"a class may not be named {SUPERCLASS!r} (the superclass of the COCO file)")
    return [{"id": 0, "name": SUPERCLASS, "supercategory": "none"},
            *({"id": k + 1, "name": name, "supercategory": SUPERCLASS} for k, name in enumerate(classes))]


def frame_annotations(frame: CorrectedFrame, image_id: int, tolerance_px: float = DEFAULT_TOLERANCE_PX) -> list[dict]:
    """One COCO annotation per part of each class mask of ``frame``; none for empty masks.

    Args:
        frame: the corrected frame.
        image_id: its ``images[].id``.
        tolerance_px: polygon simplification, px (see :mod:`pipeline.corrections.polygons`).

    Returns:
        Annotations with ids 0, 1, ... (renumber when merging frames), channel by channel.
    """
    annotations = []
    for channel in range(len(frame.classes)):
        for part in mask_parts(frame.masks[channel], tolerance_px):
            flat = [round(float(value), COORDINATE_DECIMALS) for value in keyhole_ring(part).ravel()]
            annotations.append({"id": len(annotations), "image_id": image_id, "category_id": channel + 1,
                                "bbox": [float(value) for value in part.box], "area": part.pixels,
                                "segmentation": [flat], "iscrowd": 0})
    return annotations


def _image(frame: CorrectedFrame, image_id: int) -> dict:
    return {"id": image_id, "file_name": frame.file_name, "width": frame.width, "height": frame.height}


def _document(classes: Sequence[str], images: list[dict], annotations: list[dict]) -> dict:
    return {"info": dict(INFO), "licenses": [], "categories": coco_categories(classes), "images": images,
            "annotations": annotations}


def _check_frames(frames: Sequence[CorrectedFrame]) -> tuple[str, ...]:
    """The classes all frames share.

    Raises:
        CorrectionsError: no frames, frames of different classes, or a file name given twice
            (compared without case: the per-frame files must not collide on any file system).
    """
    if not frames:
        raise CorrectionsError("no corrected frames to write")
    classes = frames[0].classes
    seen: dict[str, str] = {}
    for frame in frames:
        if not isinstance(frame, CorrectedFrame):
            raise CorrectionsError(f"expected CorrectedFrame objects, got {type(frame).__name__}")
        if frame.classes != classes:
            raise CorrectionsError(f"{frame.file_name}: classes {list(frame.classes)} differ from "
                                   f"{list(classes)} of {frames[0].file_name}; all frames must share the classes")
        folded = frame.file_name.casefold()
        if folded in seen:
            raise CorrectionsError(f"{frame.file_name}: corrected twice (also as {seen[folded]}); keep one correction "
                                   "per frame")
        seen[folded] = frame.file_name
    return classes


def write_corrections(out_dir: Path, frames: Sequence[CorrectedFrame], tolerance_px: float = DEFAULT_TOLERANCE_PX,
                      force: bool = False) -> Path:
    """Writes the corrections folder described in the module docstring, all or nothing.

    The folder is written beside ``out_dir`` under a temporary name and renamed into place
    when complete (:func:`pipeline.files.output_folder.output_folder`).

    Args:
        out_dir: the folder to create; an existing one must be empty, or, with ``force``, an
            earlier corrections folder holding only files this function wrote.
        frames: the corrected frames (distinct file names, the same classes).
        tolerance_px: polygon simplification, px; the default keeps the round trip exact.
        force: replace an earlier corrections folder at ``out_dir``.

    Returns:
        ``out_dir``.

    Raises:
        CorrectionsError: no frames, mixed classes, a repeated file name.
        OutputFolderError: ``out_dir`` exists, is not empty and is not (or, without ``force``,
            may not replace) an earlier corrections folder; the message names it.
    """
    out_dir = Path(out_dir)
    classes = _check_frames(frames)
    images, merged, single = [], [], []
    for image_id, frame in enumerate(frames):
        annotations = frame_annotations(frame, image_id, tolerance_px)
        images.append(_image(frame, image_id))
        merged += [{**annotation, "id": len(merged) + k} for k, annotation in enumerate(annotations)]
        single.append((frame.file_name, _document(classes, [_image(frame, image_id)],
                                                  annotations or [dict(EMPTY_PLACEHOLDER)])))
    with output_folder(out_dir, COMMAND, force=force) as staging:
        write_text_atomically(staging / ANNOTATIONS_FILE, json.dumps(_document(classes, images, merged)) + "\n")
        for file_name, document in single:
            write_text_atomically(frame_document_path(staging, file_name), json.dumps(document) + "\n")
    return out_dir


def load_coco(path: Path, shown: str) -> CocoFile:
    """Reads and structurally checks one COCO file (:func:`pipeline.ingest.coco_json.parse_coco`).

    Raises:
        CorrectionsError: ``<shown>: <problem>``, with the JSON path of a malformed element.
    """
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise CorrectionsError(f"{shown}: missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorrectionsError(f"{shown}: not valid JSON ({error})") from None
    try:
        return parse_coco(payload, path)
    except MalformedJson as error:
        raise CorrectionsError(f"{shown}: {error}") from None


def coco_classes(coco: CocoFile, shown: str) -> tuple[tuple[str, ...], dict[int, int]]:
    """The classes (categories other than the superclass, by id) and category id -> channel.

    Raises:
        CorrectionsError: no class, or a class name used twice.
    """
    categories = sorted((c for c in coco.categories if not c.superclass), key=lambda c: c.id)
    names = tuple(category.name for category in categories)
    if not names:
        raise CorrectionsError(f"{shown}: no categories besides the superclass; expected one per class")
    if len(set(names)) != len(names):
        raise CorrectionsError(f"{shown}: categories name a class twice: {list(names)}")
    return names, {category.id: channel for channel, category in enumerate(categories)}


def coco_masks(coco: CocoFile, shown: str, placeholder: bool = False) -> tuple[tuple[str, ...], dict[int, np.ndarray]]:
    """The classes and each image's (C, H, W) bool masks, rasterised as the ingest does.

    Args:
        coco: a structurally checked COCO file.
        shown: how messages name it.
        placeholder: skip the client's :data:`EMPTY_PLACEHOLDER` annotation (single-frame files).

    Raises:
        CorrectionsError: an annotation of no listed image or of no class, or without a polygon
            (``<shown>: annotations[k]...: <problem>``).
    """
    classes, channel_of = coco_classes(coco, shown)
    superclass = {category.id for category in coco.categories if category.superclass}
    images = {image.id: image for image in coco.images}
    masks = {image.id: np.zeros((len(classes), image.height, image.width), bool) for image in coco.images}
    for annotation in coco.annotations:
        where = f"{shown}: annotations[{annotation.index}]"
        if placeholder and annotation.image_id == PLACEHOLDER_ID and annotation.category_id in superclass \
                and not annotation.rings:
            continue
        if annotation.image_id not in images:
            raise CorrectionsError(f"{where}.image_id: {annotation.image_id} is not among the images")
        if annotation.category_id not in channel_of:
            raise CorrectionsError(f"{where}.category_id: {annotation.category_id} is not a class "
                                   f"({', '.join(classes)})")
        if not annotation.rings:
            raise CorrectionsError(f"{where}.segmentation: no polygon")
        fill_rings(masks[annotation.image_id][channel_of[annotation.category_id]], annotation.rings)
    return classes, masks


def read_corrections(folder: Path) -> list[CorrectedFrame]:
    """Reads a corrections folder back, checking that its per-frame files agree with the whole.

    Returns:
        The frames in the order of ``_annotations.coco.json``; masks as the project's ingest
        would rasterise the polygons.

    Raises:
        CorrectionsError: one line naming the folder or file and the problem: no such folder,
            a missing or malformed COCO file (JSON path given), no images, an annotation of no
            listed image or no class or without polygon, a bad or repeated file name, a frame
            without its single-frame file (or such a file for no frame), or a single-frame
            file that does not match ``_annotations.coco.json``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CorrectionsError(f"{folder}: no such corrections folder")
    whole = load_coco(folder / ANNOTATIONS_FILE, str(folder / ANNOTATIONS_FILE))
    shown = str(folder / ANNOTATIONS_FILE)
    if not whole.images:
        raise CorrectionsError(f"{shown}: no images; expected one per corrected frame")
    classes, masks = coco_masks(whole, shown)
    names: dict[str, int] = {}
    for image in whole.images:
        check_file_name(image.file_name, f"{shown}: images[{image.index}].file_name")
        if image.file_name.casefold() in names:
            raise CorrectionsError(f"{shown}: images[{image.index}].file_name: {image.file_name} repeats "
                                   f"images[{names[image.file_name.casefold()]}]")
        names[image.file_name.casefold()] = image.index
    _check_frame_files(folder, whole)
    frames = []
    for image in whole.images:
        _check_single(folder, image.file_name, (image.width, image.height), classes, masks[image.id])
        frames.append(CorrectedFrame(image.file_name, masks[image.id], classes))
    return frames


def _check_frame_files(folder: Path, whole: CocoFile) -> None:
    """Raises unless ``frames/`` holds exactly one file per image (hidden files aside)."""
    expected = {frame_document_path(folder, image.file_name).name for image in whole.images}
    present = {p.name for p in (folder / FRAMES_FOLDER).iterdir() if not p.name.startswith(".")} \
        if (folder / FRAMES_FOLDER).is_dir() else set()
    missing, extra = sorted(expected - present), sorted(present - expected)
    if missing:
        raise CorrectionsError(f"{folder / FRAMES_FOLDER / missing[0]}: missing ({len(missing)} frame file(s) "
                               f"missing; each image of {ANNOTATIONS_FILE} needs its own)")
    if extra:
        raise CorrectionsError(f"{folder / FRAMES_FOLDER / extra[0]}: not a frame of {ANNOTATIONS_FILE} "
                               f"({len(extra)} such file(s))")


def _check_single(folder: Path, file_name: str, size: tuple[int, int], classes: tuple[str, ...],
                  masks: np.ndarray) -> None:
    """Raises unless the frame's single-image file lists that image, its size, the classes and the same masks."""
    path = frame_document_path(folder, file_name)
    single = load_coco(path, str(path))
    if len(single.images) != 1:
        raise CorrectionsError(f"{path}: lists {len(single.images)} images; expected exactly one ({file_name})")
    image = single.images[0]
    if (image.file_name, image.width, image.height) != (file_name, *size):
        raise CorrectionsError(f"{path}: images[0] is {image.file_name} {image.width}x{image.height}; "
                               f"{ANNOTATIONS_FILE} has {file_name} {size[0]}x{size[1]}")
    own_classes, own_masks = coco_masks(single, str(path), placeholder=True)
    if own_classes != classes:
        raise CorrectionsError(f"{path}: classes {list(own_classes)} differ from {list(classes)} of {ANNOTATIONS_FILE}")
    differ = [f"{name} ({int((own_masks[image.id][k] != masks[k]).sum())} px)" for k, name in enumerate(classes)
              if not np.array_equal(own_masks[image.id][k], masks[k])]
    if differ:
        raise CorrectionsError(f"{path}: its polygons differ from {ANNOTATIONS_FILE}'s: {', '.join(differ)}")

