"""Writes synthetic TRUS phantoms as a Roboflow "COCO Segmentation" export, quirks included.

Layout and quirks follow real Roboflow exports (see ``shared/fixtures/roboflow-real``):
``train/``, ``valid/``, ``test/`` each hold ``_annotations.coco.json`` and re-encoded
3-channel JPEGs named ``<original name, dots as _>.rf.<hash>.jpg``; category 0 is the
project superclass and has no annotations; image and annotation ids restart in each
split; ``area`` is the bbox area, not the polygon's; bbox x, y are rounded half up
while w, h keep 3 decimals; every polygon is closed (first vertex repeated); frames
without a gland are listed with no annotation. Beside the splits, at the export's root,
``trus_sample_frames.csv`` and ``trus_sample_patients.csv`` give each frame's plane, level
and pixel spacing and each patient's true gland size (:mod:`pipeline.synthetic.manifests`).
Everything derives from the seed, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import cv2
import numpy as np

from pipeline.files.output_folder import output_folder
from pipeline.synthetic.manifests import FRAMES_MANIFEST, PATIENTS_MANIFEST, frame_row, write_manifests
from pipeline.synthetic.plan import (SPLITS, FramePlan, SampleSpec, original_name, patient_exam,  # noqa: F401
                                     plan_export, roboflow_file_name)
from pipeline.synthetic.scanner import sample_frame
from pipeline.synthetic.variants import DEFAULT, FLEET, VARIANTS

CATEGORIES = (
    {"id": 0, "name": "prostate-trus", "supercategory": "none"},
    {"id": 1, "name": "gland", "supercategory": "prostate-trus"},
    {"id": 2, "name": "lesion", "supercategory": "prostate-trus"},
)
_JPEG_QUALITY = 90


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
    polygons, sizes, spacings = _render_frames(out_dir, seed, spec, plans)
    stamp = _export_time(seed)
    docs = {split: _coco_header(seed, stamp, spec) for split in SPLITS}
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
    exams = {p: patient_exam(seed, p, spec.frames_per_patient, spec.sagittal_fraction)
             for p in range(1, spec.n_patients + 1)}
    write_manifests(out_dir, (frame_row(plan, spacings[plan.file_name], sizes[plan.file_name]) for plan in plans), exams)
    (out_dir / "README.dataset.txt").write_text(_readme_dataset(seed))
    (out_dir / "README.roboflow.txt").write_text(_readme_roboflow(seed, stamp, plans, spec, set(sizes.values())))
    return counts


def _render_frames(out_dir: Path, seed: int, spec: SampleSpec, plans: list[FramePlan]
                   ) -> tuple[dict[str, list[tuple[int, np.ndarray]]], dict[str, tuple[int, int]], dict[str, float]]:
    """Renders every planned frame into its split folder as JPEG, patient by patient.

    Returns:
        For each file name, its (category id, (N, 2) polygon) pairs (gland first, then
        lesion), its (width, height) px and its pixel spacing (mm per px).
    """
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    polygons: dict[str, list[tuple[int, np.ndarray]]] = {}
    sizes: dict[str, tuple[int, int]] = {}
    spacings: dict[str, float] = {}
    by_patient = sorted(plans, key=lambda plan: (plan.patient, plan.frame))
    for plan in by_patient:
        frame = sample_frame(seed, plan.patient, plan.frame, variant=spec.variant,
                             size=(spec.frame_width, spec.frame_height), frames_per_patient=spec.frames_per_patient,
                             sagittal_fraction=spec.sagittal_fraction, with_gland=plan.with_gland,
                             with_lesion=plan.with_lesion)
        path = out_dir / plan.split / plan.file_name
        if not cv2.imwrite(str(path), frame.image, [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY]):
            raise OSError(f"could not write {path}")
        polygons[plan.file_name] = [(1, g) for g in frame.gland_polygons] + [(2, g) for g in frame.lesion_polygons]
        sizes[plan.file_name] = (frame.image.shape[1], frame.image.shape[0])
        spacings[plan.file_name] = frame.spacing_mm
    return polygons, sizes, spacings


def _number(value: float) -> int | float:
    """Rounds to 3 decimals like Roboflow; whole numbers become ints (``300``, not ``300.0``)."""
    rounded = round(float(value), 3)
    return int(rounded) if rounded.is_integer() else rounded


def _export_time(seed: int) -> str:
    """A made-up export timestamp derived from the seed, ISO 8601 with a +00:00 offset."""
    offset = int(np.random.default_rng([seed, 3]).integers(0, 365 * 86400))
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=offset)
    return moment.isoformat()


def _command(seed: int, spec: SampleSpec) -> str:
    """The ``trus sample`` command that makes this export."""
    options = "" if spec.variant == DEFAULT.name else f" --variant {spec.variant}"
    if spec.sagittal_fraction != SampleSpec.sagittal_fraction:
        options += f" --sagittal-fraction {spec.sagittal_fraction:g}"
    return f"trus sample --seed {seed}{options}"


def _coco_header(seed: int, stamp: str, spec: SampleSpec) -> dict:
    """An empty split document in Roboflow's key order."""
    return {
        "info": {"year": stamp[:4], "version": "1",
                 "description": f"SYNTHETIC prostate TRUS phantoms made by `{_command(seed, spec)}`; "
                                "not patient data",
                 "contributor": "trus sample (synthetic phantom generator)", "url": "", "date_created": stamp},
        "licenses": [{"id": 1, "url": "https://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}],
        "categories": [dict(c) for c in CATEGORIES],
        "images": [],
        "annotations": [],
    }


def _readme_dataset(seed: int) -> str:
    """Roboflow's short ``README.dataset.txt``, saying this is synthetic and naming the manifests beside it."""
    return (f"# prostate-trus SYNTHETIC sample > seed {seed}\n"
            "SYNTHETIC phantom data generated by `trus sample`: no patient data, no real scans.\n\n"
            "One 3-D gland per synthetic patient, seen in transverse frames (base, mid-gland, apex) and in\n"
            "sagittal frames (midline, off the midline). Original names are P<patient>_F<frame>_<plane>.png\n"
            "(plane: transverse or sagittal).\n"
            f"{FRAMES_MANIFEST}: per frame original_name, patient, plane, level, position, spacing_x_mm,\n"
            "spacing_y_mm (10 / the depth scale's px per cm), width, height.\n"
            f"{PATIENTS_MANIFEST}: per patient the gland's true length_mm, width_mm, height_mm and\n"
            "volume_ml (pi/6 x L x W x H).\n\n"
            "Provided by the trus project's synthetic phantom generator\n"
            "License: CC BY 4.0\n")


def _readme_roboflow(seed: int, stamp: str, plans: list[FramePlan], spec: SampleSpec,
                     sizes: set[tuple[int, int]]) -> str:
    """Roboflow's longer ``README.roboflow.txt``, saying this is synthetic."""
    size_text = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
    if spec.variant == FLEET:
        scanner = "Scanner variant: fleet (each patient on one of the variants, drawn from the seed).\n"
    elif spec.variant != DEFAULT.name:
        scanner = f"Scanner variant: {spec.variant} ({VARIANTS[spec.variant].description}).\n"
    else:
        scanner = ""
    sagittal = sum(plan.frame_slice.plane == "sagittal" for plan in plans)
    glands = [plan for plan in plans if plan.with_gland]
    return (f"\nprostate-trus - SYNTHETIC sample, seed {seed}\n"
            "==============================\n\n"
            f"This is SYNTHETIC phantom data generated by `{_command(seed, spec)}` (dated {stamp}).\n"
            "It imitates the layout of a Roboflow \"COCO Segmentation\" export, quirks included,\n"
            "but it was not exported from roboflow.com and contains no patient data:\n"
            "every frame is a rendered B-mode TRUS phantom with its text burned in as SYNTHETIC.\n\n"
            f"The dataset includes {len(plans)} images "
            f"({spec.n_patients} patients x {spec.frames_per_patient} frames, {size_text}):\n"
            f"{len(plans) - sagittal} transverse and {sagittal} sagittal; {len(glands)} show the gland, "
            f"{sum(plan.with_lesion for plan in glands)} of them a lesion.\n"
            f"{scanner}"
            "Gland and lesion are annotated in COCO Segmentation format.\n"
            "Original names are P<patient>_F<frame>_<plane>.png; the split is random per frame, as Roboflow's is,\n"
            "so one patient's frames can fall in several splits.\n"
            f"{FRAMES_MANIFEST} and {PATIENTS_MANIFEST} give each frame's plane, level and pixel spacing,\n"
            "and each patient's true gland length, width, height and volume.\n\n"
            "No pre-processing or augmentation was applied.\n")
