"""The sample's 3-D glands seen in both planes: plane mix, true sizes, bladder, lesions, manifests, ingest.

Every check runs on the frames `trus sample` writes (or renders through :func:`sample_frame`, the
same code path), against the truth the generator records beside the export.
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.config import DataParams, QcParams
from pipeline.ingest.coco import read_coco_export
from pipeline.ingest.frames_manifest import read_frames_manifest
from pipeline.ingest.names import parse_export_name, patient_of
from pipeline.ingest.source import ingest
from pipeline.synthetic import (FRAMES_MANIFEST, PATIENTS_MANIFEST, PLANES, SAGITTAL, TRANSVERSE, VARIANT_NAMES,
                                SampleSpec, lesion_frames, patient_exam, plane_in_name, read_sample_manifests,
                                sample_frame, write_sample_export)
from pipeline.synthetic.anatomy import LEVELS, lesion_section, section_scale
from pipeline.synthetic.manifests import FRAME_COLUMNS, PATIENT_COLUMNS
from pipeline.synthetic.overlays import depth_scale_x
from pipeline.synthetic.plan import plan_export
from pipeline.synthetic.variants import patient_variant
from tests.fake_roboflow import zip_folder

PATTERN = DataParams().patient_pattern  # the project's default data.patient_pattern
SPEC = SampleSpec(n_patients=6, empty_fraction=0.1, lesion_fraction=0.5)  # the default frames, 30 of them


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planes") / "data"
    write_sample_export(root, seed=0, spec=SPEC)
    return root


@pytest.fixture(scope="module")
def manifests(export: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return read_sample_manifests(export)


@pytest.fixture(scope="module")
def read_back(export: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Original name -> (gland, lesion) masks, as the project's COCO reader reads the export."""
    return {parse_export_name(f.image_path.name).original_name: f.masks(2)
            for f in read_coco_export(export, ["gland", "lesion"])}


def horizontal_extent(mask: np.ndarray) -> int:
    """Largest horizontal extent of a mask, px (pixel centres, end pixels included)."""
    xs = np.nonzero(mask)[1]
    return int(xs.max() - xs.min() + 1)


def vertical_extent(mask: np.ndarray) -> int:
    ys = np.nonzero(mask)[0]
    return int(ys.max() - ys.min() + 1)


def test_default_sample_mixes_the_planes_per_patient():
    plans = plan_export(0)
    assert Counter(p.frame_slice.plane for p in plans) == {TRANSVERSE: 72, SAGITTAL: 48}
    for patient in range(1, 25):
        mine = sorted((p for p in plans if p.patient == patient), key=lambda p: p.frame)
        assert [p.frame_slice.plane for p in mine] == [TRANSVERSE] * 3 + [SAGITTAL] * 2
        for plan in mine:
            assert plan.file_name.startswith(plan.original_name.replace(".", "_") + ".rf.")
            assert plane_in_name(plan.original_name) == plan.frame_slice.plane
            assert plan.frame_slice.level in LEVELS[plan.frame_slice.plane]
            assert plan.frame_slice.shows_gland == plan.with_gland
        if not any(p.with_lesion for p in mine):  # a lesion patient's exam may move a frame onto the lesion
            levels = [p.frame_slice.level for p in mine if p.with_gland]
            assert levels == [level for level in ("base", "mid", "apex", "midline", "off_midline")
                              if level in levels]
    levels = Counter(p.frame_slice.level for p in plans)
    assert levels["mid"] >= 24 and levels["midline"] >= 20 and levels["base"] >= 18 and levels["apex"] >= 18
    assert levels["beyond_apex"] + levels["lateral"] == sum(not p.with_gland for p in plans) == 7


@pytest.mark.parametrize("fraction, frames, sagittal", [(0.0, 5, 0), (1.0, 5, 5), (0.5, 4, 2), (0.4, 2, 1),
                                                        (0.4, 1, 0), (0.25, 2, 1)])
def test_sagittal_fraction_sets_the_plane_mix(fraction, frames, sagittal):
    spec = SampleSpec(n_patients=3, frames_per_patient=frames, sagittal_fraction=fraction)
    plans = plan_export(1, spec)
    assert len(plans) == 3 * frames
    assert sum(p.frame_slice.plane == SAGITTAL for p in plans) == 3 * sagittal
    with pytest.raises(ValueError, match="fractions"):
        SampleSpec(sagittal_fraction=1.5)


def test_patients_have_realistic_glands():
    exams = [patient_exam(seed, patient) for seed in range(3) for patient in range(1, 101)]
    volumes = np.array([e.anatomy.volume_ml for e in exams])
    assert volumes.min() >= 15 * 0.995 and volumes.max() <= 80 * 1.005
    assert 25 <= np.median(volumes) <= 50
    enlarged = [e.anatomy for e in exams if e.anatomy.enlarged_tz]
    assert 0.15 <= len(enlarged) / len(exams) <= 0.35 and min(a.volume_ml for a in enlarged) >= 45 * 0.995
    for gland in (e.anatomy for e in exams):
        assert gland.height_mm < gland.width_mm and 0.7 <= gland.length_mm / gland.width_mm <= 1.06
        assert gland.volume_ml == pytest.approx(np.pi / 6 * gland.length_mm * gland.width_mm * gland.height_mm / 1000)


def test_transverse_sections_shrink_from_mid_to_base_and_apex():
    for patient in range(1, 5):
        slices = patient_exam(2, patient).slices
        areas = {slices[f - 1].level: (sample_frame(2, patient, f).gland_mask.sum(), slices[f - 1]) for f in (1, 2, 3)}
        mid_area, mid = areas["mid"]
        for level in ("base", "apex"):
            area, cut = areas[level]
            assert area < 0.75 * mid_area
            # an ellipsoid's sections: area ~ 1 - position^2
            assert area / mid_area == pytest.approx(section_scale(cut) ** 2 / section_scale(mid) ** 2, rel=0.05)


def test_gland_masks_measure_the_patients_length_width_and_height(manifests, read_back):
    frames, patients = manifests
    truth = patients.set_index("patient")
    checked = Counter()
    for row in frames.itertuples():
        gland, _ = read_back[row.original_name]
        size = truth.loc[row.patient]
        scale = float(np.sqrt(max(0.0, 1 - row.position**2)))
        if row.level == "midline":
            assert horizontal_extent(gland) * row.spacing_x_mm == pytest.approx(size.length_mm * scale, rel=0.03)
            assert vertical_extent(gland) * row.spacing_y_mm == pytest.approx(size.height_mm * scale, rel=0.04)
        elif row.level == "mid":
            assert horizontal_extent(gland) * row.spacing_x_mm == pytest.approx(size.width_mm * scale, rel=0.03)
            assert vertical_extent(gland) * row.spacing_y_mm == pytest.approx(size.height_mm * scale, rel=0.04)
        checked[row.level] += 1
    assert checked["midline"] >= 4 and checked["mid"] >= 4


def _largest_dark_region(frame) -> tuple[float, np.ndarray]:
    """(area mm^2, mask) of the largest near-black region inside the true fan (1 mm smoothing)."""
    mm = 1 / frame.spacing_mm
    grey = cv2.GaussianBlur(frame.image[..., 0].astype(np.float32), (0, 0), mm)
    fan = cv2.erode(frame.fan_mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    count, labels, stats, _ = cv2.connectedComponentsWithStats(((grey < 20) & fan).astype(np.uint8))
    if count < 2:
        return 0.0, np.zeros_like(fan)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return stats[largest, cv2.CC_STAT_AREA] / mm**2, labels == largest


def _grow_mm(mask: np.ndarray, mm: float, spacing_mm: float) -> np.ndarray:
    r = max(1, int(round(mm / spacing_mm)))
    return cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0


@pytest.mark.parametrize("patient", range(1, 7))
def test_sagittal_frames_show_the_bladder_cranial_to_the_gland(patient):
    for index, cut in enumerate(patient_exam(0, patient).slices, start=1):
        frame = sample_frame(0, patient, index)
        area, bladder = _largest_dark_region(frame)
        if cut.plane == TRANSVERSE:
            assert area < 60  # shadows and vessels, never an anechoic bladder
            continue
        assert area >= 150  # mm^2, anechoic
        assert np.nonzero(bladder)[1].mean() < np.nonzero(frame.gland_mask)[1].mean()  # cranial: the image's left
        assert not (bladder & frame.gland_mask).any()
        grey = frame.image[..., 0]
        fan = frame.fan_mask & ~frame.gland_mask
        wall = _grow_mm(bladder, 4, frame.spacing_mm) & ~_grow_mm(bladder, 1, frame.spacing_mm) & fan
        tissue = fan & ~_grow_mm(bladder, 5, frame.spacing_mm)
        assert np.median(grey[wall]) > np.median(grey[tissue]) + 15  # its bright wall


def test_lesions_follow_the_3d_lesion_in_both_planes():
    plans = plan_export(0)
    lesion_patients = {p.patient for p in plans if p.with_lesion}
    for patient in range(1, 25):
        mine = [p for p in plans if p.patient == patient]
        shown = {p.frame for p in mine if p.with_lesion}
        if patient not in lesion_patients:
            assert not shown
            continue
        assert shown == {p.frame for p in mine if p.with_gland} & set(lesion_frames(0, patient))
        exam = patient_exam(0, patient, lesion_patient=True)
        for plan in mine:
            assert (lesion_section(exam.anatomy, plan.frame_slice) is not None and plan.with_gland) == plan.with_lesion
        if all(p.with_gland for p in mine):  # the exam records the lesion in each plane
            assert {p.frame_slice.plane for p in mine if p.with_lesion} == set(PLANES)


@pytest.mark.parametrize("patient", range(1, 9))
def test_lesion_masks_are_the_cut_inside_the_gland(patient):
    exam = patient_exam(1, patient, lesion_patient=True)
    for index in lesion_frames(1, patient):
        frame = sample_frame(1, patient, index, size=(640, 436), with_lesion=True)
        assert frame.lesion_mask.any() and not (frame.lesion_mask & ~frame.gland_mask).any()
        cut = lesion_section(exam.anatomy, exam.slices[index - 1])
        expected_px = np.pi * cut.semi_axes_mm[0] * cut.semi_axes_mm[1] / frame.spacing_mm**2
        assert 0.6 <= frame.lesion_mask.sum() / expected_px <= 1.35  # the cut's size, irregular border


def test_manifests_match_the_rendered_frames(export, manifests, read_back):
    frames, patients = manifests
    assert tuple(frames.columns) == FRAME_COLUMNS and tuple(patients.columns) == PATIENT_COLUMNS
    plans = {p.original_name: p for p in plan_export(0, SPEC)}
    assert sorted(frames["original_name"]) == sorted(plans) == sorted(read_back)
    for row in frames.itertuples():
        plan = plans[row.original_name]
        assert patient_of(plan.file_name, PATTERN) == patient_of(row.original_name, PATTERN) == row.patient
        assert parse_export_name(plan.file_name).original_name == row.original_name
        assert (row.plane, row.level, row.position) == (plan.frame_slice.plane, plan.frame_slice.level,
                                                        pytest.approx(plan.frame_slice.position, abs=5e-4))
        assert plane_in_name(row.original_name) == row.plane and row.spacing_x_mm == row.spacing_y_mm
        assert read_back[row.original_name][0].any() == plan.with_gland
        assert read_back[row.original_name][1].any() == plan.with_lesion
    for row in frames.iloc[::4].itertuples():  # the spacing is the rendered fan's
        plan = plans[row.original_name]
        frame = sample_frame(0, plan.patient, plan.frame, with_gland=plan.with_gland, with_lesion=plan.with_lesion)
        assert row.spacing_x_mm == pytest.approx(10 / frame.fan.px_per_cm, abs=1e-6)
        assert (row.width, row.height) == (frame.image.shape[1], frame.image.shape[0])
    for row in patients.itertuples():
        gland = patient_exam(0, int(row.patient[1:])).anatomy
        assert (row.length_mm, row.width_mm, row.height_mm) == (gland.length_mm, gland.width_mm, gland.height_mm)
        assert row.volume_ml == pytest.approx(np.pi / 6 * row.length_mm * row.width_mm * row.height_mm / 1000, abs=6e-4)
    assert list(patients["patient"]) == [f"P{p:03d}" for p in range(1, 7)]
    table = read_frames_manifest(export / FRAMES_MANIFEST)  # readable as a `trus frames` manifest
    assert len(table) == len(frames) and set(table["patient"]) == set(patients["patient"])


def _tick_rows(grey: np.ndarray, x: int, width: int) -> np.ndarray:
    """Centre rows (px) of the depth scale's tick marks in the strip just right of ``x``."""
    strip = grey[:, x + 1: x + max(2, int(0.005 * width))].max(axis=1) > 120
    edges = np.flatnonzero(np.diff(np.r_[0, strip.astype(int), 0]))
    return (edges[0::2] + edges[1::2] - 1) / 2


@pytest.mark.parametrize("variant", ["default", "probe_bottom", "colour", "size_800x600", "wide"])
@pytest.mark.parametrize("frame_index", [2, 4])
def test_depth_scale_ticks_are_drawn_at_the_recorded_spacing(variant, frame_index):
    frame = sample_frame(0, 3, frame_index, variant=variant)
    grey = frame.image.max(axis=2)
    width = frame.image.shape[1]
    rows = _tick_rows(grey, depth_scale_x(frame.fan, width, patient_variant(variant, 0, 3)), width)
    assert len(rows) == round(2 * frame.fan.depth_cm) + 1  # every half cm, from 0 to the depth setting
    half_cm_px = np.polyfit(np.arange(len(rows)), np.sort(rows), 1)[0]
    assert np.abs(np.diff(np.sort(rows)) - half_cm_px).max() <= 1.0
    assert 5.0 / half_cm_px == pytest.approx(frame.spacing_mm, rel=0.005)  # mm per px, as the manifest says


@pytest.mark.parametrize("variant", VARIANT_NAMES)
def test_every_variant_renders_both_planes_at_the_true_size(variant):
    exam = patient_exam(4, 2)
    for index, cut in enumerate(exam.slices, start=1):
        if cut.level not in ("mid", "midline"):
            continue
        frame = sample_frame(4, 2, index, variant=variant, size=(640, 436))
        assert frame.frame_slice == cut and frame.gland_mask.any() and not (frame.gland_mask & ~frame.fan_mask).any()
        true_mm = exam.anatomy.width_mm if cut.plane == TRANSVERSE else exam.anatomy.length_mm
        measured = horizontal_extent(frame.gland_mask) * frame.spacing_mm
        assert measured == pytest.approx(true_mm * section_scale(cut), rel=0.04)


def test_sample_export_ingests_without_errors(export, manifests, tmp_path):
    """The pull stage's path: the manifests at the export's root are neither images nor findings."""
    frames, _ = manifests
    archive = tmp_path / "export.zip"
    archive.write_bytes(zip_folder(export))
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as opened:
        assert {FRAMES_MANIFEST, PATIENTS_MANIFEST} <= set(opened.namelist())
    for index, source in enumerate((export, archive)):
        result = ingest(DataParams(export_dir=str(source)), QcParams(), tmp_path / f"pulled{index}",
                        tmp_path / f"qc{index}.json", progress=False)
        assert [f for f in result.findings if f.action == "error"] == []
        assert not any("csv" in f.detail or "csv" in f.frame for f in result.findings)
        assert sorted(result.manifest["original_name"]) == sorted(frames["original_name"])
        assert set(result.manifest["patient"]) == {f"P{p:03d}" for p in range(1, 7)}
    joined = ingest(DataParams(export_dir=str(export), frames_manifest=str(export / FRAMES_MANIFEST)), QcParams(),
                    tmp_path / "joined", tmp_path / "qc-joined.json", progress=False).manifest
    spacing = frames.set_index("original_name")["spacing_x_mm"]
    np.testing.assert_allclose(joined["spacing_x_mm"], spacing.loc[joined["original_name"]].to_numpy())


def test_cli_sagittal_fraction(tmp_path):
    result = CliRunner().invoke(app, ["sample", "--out", str(tmp_path / "s"), "--patients", "1",
                                      "--frames-per-patient", "2", "--sagittal-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    frames, patients = read_sample_manifests(tmp_path / "s")
    assert list(frames["plane"]) == [TRANSVERSE, SAGITTAL] and list(patients["patient"]) == ["P001"]
    assert "--sagittal-fraction 0.5" in (tmp_path / "s" / "README.roboflow.txt").read_text()
    refused = CliRunner().invoke(app, ["sample", "--out", str(tmp_path / "t"), "--sagittal-fraction", "1.5"])
    assert refused.exit_code != 0 and not (tmp_path / "t").exists()
