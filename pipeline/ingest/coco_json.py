"""One ``_annotations.coco.json``, checked up front and turned into typed records.

Every structural problem is one :class:`IngestError` line naming the file and the JSON
path of the bad element, never a traceback later on::

    train/_annotations.coco.json: images[3].width: missing
    train/_annotations.coco.json: annotations[12].segmentation[0][5]: null is not a number

What is checked: the top level is an object with ``images``, ``annotations`` and
``categories`` lists; every image has an integer ``id`` (unique), a ``file_name`` and
positive integer ``width``/``height``; every category an integer ``id`` (unique) and a
``name``; every annotation an integer ``image_id`` and ``category_id`` and, when it has
one, a ``segmentation`` that is a list of flat ``[x1, y1, x2, y2, ...]`` lists of finite
numbers. A missing, null or empty ``segmentation`` is an annotation without a polygon (an
object-detection box): the reader reports it, it is not malformed. Whether ids refer to
each other is the reader's business (:mod:`pipeline.ingest.coco`), not a structural check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.ingest.names import shown
from pipeline.ingest.records import IngestError, Ring

_NUMBER_TYPES = (int, float)  # exactly these: bool is an int subclass, and is no coordinate


class MalformedJson(Exception):
    """A JSON element of the wrong shape: ``where`` is its path (``images[3].width``), ``problem`` what is wrong."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where, self.problem = where, problem


@dataclass(frozen=True)
class CocoImage:
    """``images[index]``: its id, file name (relative to the split folder), size in px, and
    Roboflow tags (``extra.user_tags``; none when absent)."""

    index: int
    id: int
    file_name: str
    width: int
    height: int
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class CocoCategory:
    """``categories[index]``; the superclass is Roboflow's category 0 with ``supercategory: "none"``."""

    id: int
    name: str
    superclass: bool


@dataclass(frozen=True)
class CocoAnnotation:
    """``annotations[index]``: the image and category it names, its polygon rings (px) and whether it has a bbox."""

    index: int
    image_id: int
    category_id: int
    rings: tuple[Ring, ...]
    has_box: bool


@dataclass(frozen=True)
class CocoFile:
    """A checked ``_annotations.coco.json``."""

    path: Path
    images: tuple[CocoImage, ...]
    categories: tuple[CocoCategory, ...]
    annotations: tuple[CocoAnnotation, ...]
    info: dict = field(default_factory=dict)


def describe(value: Any) -> str:
    """A JSON value as the file spells it, cut to 40 characters: ``null``, ``"12.5"``, ``[1, 2]``."""
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def json_type(value: Any) -> str:
    """What a JSON value is, for messages: ``an object``, ``a list``, ``a text``, ``a number``, ``null``."""
    if value is None:
        return "null"
    kinds = ((dict, "an object"), (list, "a list"), (str, "a text"), (bool, "a boolean"))
    return next((name for kind, name in kinds if isinstance(value, kind)), "a number")


def as_object(value: Any, where: str) -> dict:
    """``value`` if it is a JSON object."""
    if not isinstance(value, dict):
        raise MalformedJson(where, f"expected an object, got {describe(value)}")
    return value


def as_list(value: Any, where: str) -> list:
    """``value`` if it is a JSON list."""
    if not isinstance(value, list):
        raise MalformedJson(where, f"expected a list, got {describe(value)}")
    return value


def member(obj: dict, key: str, where: str) -> Any:
    """``obj[key]``; a missing key is malformed at ``where.key``."""
    if key not in obj:
        raise MalformedJson(f"{where}.{key}" if where else key, "missing")
    return obj[key]


def as_integer(value: Any, where: str, minimum: int | None = None) -> int:
    """An integer (``3`` or ``3.0``), at least ``minimum`` when given."""
    if type(value) not in _NUMBER_TYPES or (isinstance(value, float) and not value.is_integer()):
        raise MalformedJson(where, f"{describe(value)} is not an integer")
    if minimum is not None and value < minimum:
        raise MalformedJson(where, f"{describe(value)} is below {minimum}")
    return int(value)


def as_text(value: Any, where: str) -> str:
    """``value`` if it is a non-blank JSON string."""
    if not isinstance(value, str) or not value.strip():
        raise MalformedJson(where, f"expected a non-empty text, got {describe(value)}")
    return value


def as_ring(value: Any, where: str) -> Ring:
    """A flat ``[x1, y1, x2, y2, ...]`` polygon of finite numbers as (N, 2) float32 px."""
    flat = as_list(value, where)
    for position, number in enumerate(flat):
        if type(number) not in _NUMBER_TYPES:
            raise MalformedJson(f"{where}[{position}]", f"{describe(number)} is not a number")
    points = np.asarray(flat, np.float64)
    bad = np.flatnonzero(~np.isfinite(points))
    if bad.size:
        raise MalformedJson(f"{where}[{bad[0]}]", f"{describe(flat[bad[0]])} is not a finite number")
    if len(flat) % 2:
        raise MalformedJson(where, f"an odd number of coordinates ({len(flat)}); expected x, y pairs")
    return points.reshape(-1, 2).astype(np.float32)


def as_rings(value: Any, where: str) -> tuple[Ring, ...]:
    """A ``segmentation``: its non-empty polygon rings; none for null or ``[]`` (a box-only annotation).

    Raises:
        MalformedJson: RLE (a dict), or anything else that is not a list of polygons.
    """
    if value is None:
        return ()
    if isinstance(value, dict):
        raise MalformedJson(where, "an RLE mask, not polygons (lists of x, y coordinates); export the version "
                                   "as \"COCO Segmentation\"")
    rings = (as_ring(ring, f"{where}[{index}]") for index, ring in enumerate(as_list(value, where)))
    return tuple(ring for ring in rings if len(ring))


def parse_tags(image: dict, where: str) -> tuple[str, ...]:
    """An image's Roboflow tags, ``extra.user_tags`` (a list of texts); none without ``extra`` or the key."""
    extra = image.get("extra")
    if extra is None:
        return ()
    tags = as_object(extra, f"{where}.extra").get("user_tags")
    if tags is None:
        return ()
    return tuple(as_text(tag, f"{where}.extra.user_tags[{k}]") for k, tag in
                 enumerate(as_list(tags, f"{where}.extra.user_tags")))


def parse_image(value: Any, index: int) -> CocoImage:
    """``images[index]``: integer id, file name, positive integer width and height, tags."""
    where = f"images[{index}]"
    image = as_object(value, where)
    return CocoImage(index, as_integer(member(image, "id", where), f"{where}.id"),
                     as_text(member(image, "file_name", where), f"{where}.file_name"),
                     as_integer(member(image, "width", where), f"{where}.width", minimum=1),
                     as_integer(member(image, "height", where), f"{where}.height", minimum=1),
                     parse_tags(image, where))


def parse_category(value: Any, index: int) -> CocoCategory:
    """``categories[index]``: integer id and a name."""
    where = f"categories[{index}]"
    category = as_object(value, where)
    category_id = as_integer(member(category, "id", where), f"{where}.id")
    return CocoCategory(category_id, as_text(member(category, "name", where), f"{where}.name"),
                        superclass=category_id == 0 and category.get("supercategory") == "none")


def parse_annotation(value: Any, index: int) -> CocoAnnotation:
    """``annotations[index]``: integer image and category ids, polygon rings (maybe none) and whether a bbox is there."""
    where = f"annotations[{index}]"
    annotation = as_object(value, where)
    box = annotation.get("bbox")
    return CocoAnnotation(index, as_integer(member(annotation, "image_id", where), f"{where}.image_id"),
                          as_integer(member(annotation, "category_id", where), f"{where}.category_id"),
                          as_rings(annotation.get("segmentation"), f"{where}.segmentation"),
                          has_box=isinstance(box, list) and len(box) == 4)


def unique_ids(ids: list[int], section: str) -> None:
    """Raises MalformedJson at the first id that repeats an earlier one of the same section."""
    first: dict[int, int] = {}
    for index, value in enumerate(ids):
        if value in first:
            raise MalformedJson(f"{section}[{index}].id", f"{value} repeats {section}[{first[value]}].id")
        first[value] = index


def parse_coco(payload: Any, path: Path) -> CocoFile:
    """Checks a parsed ``_annotations.coco.json`` and returns its typed records.

    Raises:
        MalformedJson: the first element of the wrong shape.
    """
    if not isinstance(payload, dict):
        raise MalformedJson("", f"expected a JSON object with images, annotations and categories, got "
                                f"{json_type(payload)}")
    top = payload
    images = tuple(parse_image(v, i) for i, v in enumerate(as_list(member(top, "images", ""), "images")))
    categories = tuple(parse_category(v, i) for i, v in enumerate(as_list(member(top, "categories", ""),
                                                                          "categories")))
    annotations = tuple(parse_annotation(v, i) for i, v in enumerate(as_list(member(top, "annotations", ""),
                                                                             "annotations")))
    unique_ids([image.id for image in images], "images")
    unique_ids([category.id for category in categories], "categories")
    info = top.get("info")
    return CocoFile(path, images, categories, annotations, info if isinstance(info, dict) else {})


def load_coco_file(path: Path) -> CocoFile:
    """Reads and checks one ``_annotations.coco.json``.

    Raises:
        IngestError: unreadable, not JSON, or malformed; one line naming the file (as
            :func:`pipeline.ingest.names.shown` does) and the JSON path of the bad element.
    """
    try:
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IngestError(f"{shown(path)}: not valid JSON ({error})") from error
    try:
        return parse_coco(payload, path)
    except MalformedJson as error:
        raise IngestError(f"{shown(path)}: {error}") from None


__all__ = ["CocoAnnotation", "CocoCategory", "CocoFile", "CocoImage", "MalformedJson", "load_coco_file",
           "parse_coco"]
