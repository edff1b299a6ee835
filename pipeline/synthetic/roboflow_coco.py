"""Writes synthetic TRUS phantoms as a Roboflow "COCO Segmentation" export, quirks included.

Layout and quirks follow real Roboflow exports (see ``shared/fixtures/roboflow-real``):
``train/``, ``valid/``, ``test/`` each hold ``_annotations.coco.json`` and re-encoded
3-channel JPEGs named ``<original name, dots as _>.rf.<hash>.jpg``; category 0 is the
project superclass and has no annotations; image and annotation ids restart in each
split; ``area`` is the bbox area, not the polygon's; bbox x, y are rounded half up
while w, h keep 3 decimals; every polygon is closed (first vertex repeated); frames
without a gland are listed with no annotation. Everything derives from the seed, so the
same seed gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.files.output_folder import output_folder

from pipeline.synthetic.scanner import sample_frame
from pipeline.synthetic.variants import DEFAULT, FLEET, VARIANT_NAMES, VARIANTS

SPLITS = ("train", "valid", "test")
CATEGORIES = (
    {"id": 0, "name": "prostate-trus", "supercategory": "none"},
    {"id": 1, "name": "gland", "supercategory": "prostate-trus"},
    {"id": 2, "name": "lesion", "supercategory": "prostate-trus"},
)
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_JPEG_QUALITY = 90


@dataclass(frozen=True)
class SampleSpec:
    """Size and make-up of a synthetic export.

    Attributes:
        n_patients: patients, each a sweep of ``frames_per_patient`` frames.
        frames_per_patient: frames per patient.
        frame_width: frame width, px (the original scanner's); at least 256.
        frame_height: frame height, px; at least 192.
        lesion_fraction: fraction of gland frames that show a lesion, 0..1.
        empty_fraction: fraction of all frames where the probe misses the gland (no annotation), 0..1.
        split_fractions: Roboflow's random train/valid/test split, per frame (patients straddle splits).
        variant: the scanner, a key of ``VARIANTS`` (``default``: the original one), or
            ``fleet`` (each patient on one of them, drawn from the seed). A variant with
            its own frame size overrides ``frame_width`` and ``frame_height``.
    """

    n_patients: int = 24
    frames_per_patient: int = 5
    frame_width: int = 1280
    frame_height: int = 872
    lesion_fraction: float = 0.4
    empty_fraction: float = 0.06
    split_fractions: tuple[float, float, float] = (0.7, 0.2, 0.1)
    variant: str = DEFAULT.name

    def __post_init__(self) -> None:
        if self.n_patients < 1 or self.frames_per_patient < 1 or self.frame_width < 256 or self.frame_height < 192:
            raise ValueError(f"too small a sample (frames must be at least 256x192 px): {self}")
        fractions = (self.lesion_fraction, self.empty_fraction, *self.split_fractions)
        if not all(0.0 <= f <= 1.0 for f in fractions) or abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions must lie in [0, 1] and split_fractions sum to 1: {self}")
        if self.variant not in VARIANT_NAMES:
            raise ValueError(f"unknown sample variant {self.variant!r}; expected one of {', '.join(VARIANT_NAMES)}")


@dataclass(frozen=True)
class FramePlan:
    """What one frame of the export shows and where it goes; known before any rendering.

    Attributes:
        patient: patient number, from 1.
        frame: frame number within the patient's sweep, from 1.
        split: one of ``SPLITS``.
        with_gland: the gland is in view (False: no annotation at all).
        with_lesion: a lesion is in view (implies ``with_gland``).
        file_name: the Roboflow file name, ``P007_F03_png.rf.<hash>.jpg``.
    """

    patient: int
    frame: int
    split: str
    with_gland: bool
    with_lesion: bool
    file_name: str

    @property
    def original_name(self) -> str:
        """The scanner's file name before Roboflow, e.g. ``P007_F03.png``."""
        return original_name(self.patient, self.frame)


def original_name(patient: int, frame: int) -> str:
    """The scanner's file name of a frame, ``P{patient:03d}_F{frame:02d}.png``."""
    return f"P{patient:03d}_F{frame:02d}.png"


def roboflow_file_name(original_name: str, seed: int) -> str:
    """Roboflow's name for an uploaded image: dots become ``_``, then ``.rf.<hash>.jpg``.

    The hash is deterministic in (seed, name): 32 lowercase hex characters for about two
    thirds of names, the newer 20-character base62 style for the rest.
    """
    digest = hashlib.sha256(f"{seed}/{original_name}".encode()).digest()
    if digest[0] % 3 == 0:
        value = int.from_bytes(digest[1:], "big")
        token = "".join(_BASE62[(value // 62**i) % 62] for i in range(20))
    else:
        token = digest[1:17].hex()
    return f"{original_name.replace('.', '_')}.rf.{token}.jpg"


def plan_export(seed: int, spec: SampleSpec = SampleSpec()) -> list[FramePlan]:
    """Draws which frames miss the gland, show a lesion, and land in which split.

    Args:
        seed: non-negative export seed.
        spec: export size and fractions.

    Returns:
        Every frame once, in Roboflow's (shuffled) listing order.
    """
    rng = np.random.default_rng([seed, 0])
    frames = [(p, f) for p in range(1, spec.n_patients + 1) for f in range(1, spec.frames_per_patient + 1)]
    n = len(frames)
    empty = set(rng.choice(n, round(spec.empty_fraction * n), replace=False).tolist())
    glands = [i for i in range(n) if i not in empty]
    lesions = set(rng.choice(glands, round(spec.lesion_fraction * len(glands)), replace=False).tolist())
    order = rng.permutation(n).tolist()
    n_train, n_valid = round(spec.split_fractions[0] * n), round(spec.split_fractions[1] * n)
    split_of = {i: SPLITS[(k >= n_train) + (k >= n_train + n_valid)] for k, i in enumerate(order)}
    return [FramePlan(frames[i][0], frames[i][1], split_of[i], i not in empty, i in lesions,
                      roboflow_file_name(original_name(*frames[i]), seed)) for i in order]


def polygon_annotation(ann_id: int, image_id: int, category_id: int, polygon: np.ndarray) -> dict:
    """One COCO annotation the way Roboflow writes it.

    Args:
        ann_id: annotation id, from 0 in each split.
        image_id: id of its image in the same split.
        category_id: 1 gland, 2 lesion.
        polygon: (N, 2) x, y pixel coordinates, N >= 3.

    Returns:
        The annotation: closed flat polygon with 3-decimal coordinates, bbox [x, y, w, h]
        with x, y rounded half up, and ``area`` = bbox w * h.
    """
    xy = [[_number(v) for v in point] for point in np.asarray(polygon, np.float64)]
    flat = [v for point in xy + xy[:1] for v in point]
    xs, ys = flat[0::2], flat[1::2]
    w, h = _number(max(xs) - min(xs)), _number(max(ys) - min(ys))
    return {"id": ann_id, "image_id": image_id, "category_id": category_id,
            "bbox": [int(np.floor(min(xs) + 0.5)), int(np.floor(min(ys) + 0.5)), w, h],
            "area": _number(w * h), "segmentation": [flat], "iscrowd": 0}


def write_sample_export(out_dir: Path, seed: int = 0, spec: SampleSpec = SampleSpec(), force: bool = False
                        ) -> dict[str, int]:
    """Renders the synthetic phantoms and writes them as a Roboflow COCO Segmentation export.

    Args:
        out_dir: a new or empty folder, or with ``force`` an earlier ``trus sample`` output; the
            export appears complete or not at all (:mod:`pipeline.files.output_folder`).
        seed: non-negative seed; the same seed gives byte-identical files.
        spec: export size and fractions.
        force: replace an earlier output of ``trus sample`` in ``out_dir``.

    Returns:
        Counts ``{'train': n, 'valid': n, 'test': n, 'annotations': n}`` (images per split, all annotations).

    Raises:
        ValueError: negative seed.
        OutputFolderError: ``out_dir`` may not be written.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    with output_folder(Path(out_dir), "trus sample", force=force) as staging:
        return _write_export(staging, seed, spec)


def _write_export(out_dir: Path, seed: int, spec: SampleSpec) -> dict[str, int]:
    """Writes the export into the empty folder ``out_dir``; returns the counts of :func:`write_sample_export`."""
    plans = plan_export(seed, spec)
    polygons, sizes = _render_frames(out_dir, seed, spec, plans)
    stamp = _export_time(seed)
    docs = {split: _coco_header(seed, stamp, spec.variant) for split in SPLITS}
    for plan in plans:
        doc = docs[plan.split]
        image_id = len(doc["images"])
        width, height = sizes[plan.file_name]
        doc["images"].append({"id": image_id, "license": 1, "file_name": plan.file_name,
                              "height": height, "width": width, "date_captured": stamp})
        for category_id, polygon in polygons[plan.file_name]:
            doc["annotations"].append(polygon_annotation(len(doc["annotations"]), image_id, category_id, polygon))
    for split, doc in docs.items():
        (out_dir / split / "_annotations.coco.json").write_text(json.dumps(doc, separators=(",", ":")))
    counts = {split: len(docs[split]["images"]) for split in SPLITS}
    counts["annotations"] = sum(len(doc["annotations"]) for doc in docs.values())
    (out_dir / "README.dataset.txt").write_text(_readme_dataset(seed))
    (out_dir / "README.roboflow.txt").write_text(_readme_roboflow(seed, stamp, len(plans), spec, set(sizes.values())))
    return counts


def _render_frames(out_dir: Path, seed: int, spec: SampleSpec, plans: list[FramePlan]
                   ) -> tuple[dict[str, list[tuple[int, np.ndarray]]], dict[str, tuple[int, int]]]:
    """Renders every planned frame into its split folder as JPEG, patient by patient.

    Returns:
        For each file name, its (category id, (N, 2) polygon) pairs (gland first, then
        lesion), and its (width, height) px.
    """
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    polygons: dict[str, list[tuple[int, np.ndarray]]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    by_patient = sorted(plans, key=lambda plan: (plan.patient, plan.frame))
    for plan in by_patient:
        frame = sample_frame(seed, plan.patient, plan.frame, variant=spec.variant,
                             size=(spec.frame_width, spec.frame_height), frames_per_patient=spec.frames_per_patient,
                             with_gland=plan.with_gland, with_lesion=plan.with_lesion)
        path = out_dir / plan.split / plan.file_name
        if not cv2.imwrite(str(path), frame.image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
            raise OSError(f"could not write {path}")
        polygons[plan.file_name] = [(1, g) for g in frame.gland_polygons] + [(2, g) for g in frame.lesion_polygons]
        sizes[plan.file_name] = (frame.image.shape[1], frame.image.shape[0])
    return polygons, sizes


def _number(value: float) -> int | float:
    """Rounds to 3 decimals like Roboflow; whole numbers become ints (``300``, not ``300.0``)."""
    rounded = round(float(value), 3)
    return int(rounded) if rounded.is_integer() else rounded


def _export_time(seed: int) -> str:
    """A made-up export timestamp derived from the seed, ISO 8601 with a +00:00 offset."""
    offset = int(np.random.default_rng([seed, 3]).integers(0, 365 * 86400))
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=offset)
    return moment.isoformat()


def _command(seed: int, variant: str) -> str:
    """The ``trus sample`` command that makes this export."""
    return f"trus sample --seed {seed}" + ("" if variant == DEFAULT.name else f" --variant {variant}")


def _coco_header(seed: int, stamp: str, variant: str) -> dict:
    """An empty split document in Roboflow's key order."""
    return {
        "info": {"year": stamp[:4], "version": "1",
                 "description": f"SYNTHETIC prostate TRUS phantoms made by `{_command(seed, variant)}`; "
                                "not patient data",
                 "contributor": "trus sample (synthetic phantom generator)", "url": "", "date_created": stamp},
        "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}],
        "categories": [dict(c) for c in CATEGORIES],
        "images": [],
        "annotations": [],
    }


def _readme_dataset(seed: int) -> str:
    """Roboflow's short ``README.dataset.txt``, saying this is synthetic."""
    return (f"# prostate-trus SYNTHETIC sample > seed {seed}\n"
            "SYNTHETIC phantom data generated by `trus sample`: no patient data, no real scans.\n\n"
            "Provided by the trus project's synthetic phantom generator\n"
            "License: CC BY 4.0\n")


def _readme_roboflow(seed: int, stamp: str, n_images: int, spec: SampleSpec, sizes: set[tuple[int, int]]) -> str:
    """Roboflow's longer ``README.roboflow.txt``, saying this is synthetic."""
    size_text = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
    if spec.variant == FLEET:
        scanner = "Scanner variant: fleet (each patient on one of the variants, drawn from the seed).\n"
    elif spec.variant != DEFAULT.name:
        scanner = f"Scanner variant: {spec.variant} ({VARIANTS[spec.variant].description}).\n"
    else:
        scanner = ""
    return (f"\nprostate-trus - SYNTHETIC sample, seed {seed}\n"
            "==============================\n\n"
            f"This is SYNTHETIC phantom data generated by `{_command(seed, spec.variant)}` (dated {stamp}).\n"
            "It imitates the layout of a Roboflow \"COCO Segmentation\" export, quirks included,\n"
            "but it was not exported from roboflow.com and contains no patient data:\n"
            "every frame is a rendered B-mode TRUS phantom with its text burned in as SYNTHETIC.\n\n"
            f"The dataset includes {n_images} images "
            f"({spec.n_patients} patients x {spec.frames_per_patient} frames, {size_text}).\n"
            f"{scanner}"
            "Gland and lesion are annotated in COCO Segmentation format.\n"
            "Original names are P<patient>_F<frame>.png; the split is random per frame, as Roboflow's is,\n"
            "so one patient's frames can fall in several splits.\n\n"
            "No pre-processing or augmentation was applied.\n")
