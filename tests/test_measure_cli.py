"""`trus measure`: the measurement of given masks (a pure function), and the command end to end on a real ONNX model.

The model is the tests' threshold model (tests/tiny_models.py): its 'gland' channel is the
part of the frame brighter than mid-grey, so a bright ellipse on black is a gland of known
axes. Its 128 px network grid is 2.5 times coarser than the 320 x 240 frames, so the
masks mapped back to the frame have edges within about 1 network pixel (2.5 frame px) of
the drawn ones: diameters are checked to 3 frame px.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom import examples
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.cli.measure import (
    PlaneInput,
    check_options,
    gland_index,
    measure_masks,
    report_text,
)
from pipeline.imaging.calibration import Calibration
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.gland_size import ellipsoid_volume_ml
from tests.test_gland_size import physical_ellipse
from tests.tiny_models import tiny_contract, write_threshold_model

FRAME_SHAPE = (240, 320)
TRANSVERSE_AXES_PX = (100, 60)  # semi-axes: width 200 px, height 120 px
SAGITTAL_AXES_PX = (80, 55)     # length 160 px, height 110 px, drawn at 20 degrees
PLANE_KEYS = {"file", "spacing_mm", "spacing_source", "spacing_note"}
RULER_GAP_PX = 40  # the drawn depth scale's ticks: 10 mm per 40 px = 0.25 mm/px
CALIPER_KEYS = {"px", "mm", "start_xy", "end_xy"}
REPORT_KEYS = {"transverse", "sagittal", "width_mm", "height_mm", "length_mm", "volume_ml", "volume_note", "psa"}


def bright_ellipse(semi_axes: tuple[int, int], angle: float = 0.0) -> np.ndarray:
    """A (240, 320) uint8 frame: a 200-grey filled ellipse on black, centred."""
    gray = np.zeros(FRAME_SHAPE, np.uint8)
    cv2.ellipse(gray, (160, 120), semi_axes, angle, 0, 360, 200, thickness=-1)
    return gray


def with_depth_scale(gray: np.ndarray) -> np.ndarray:
    """The frame with a depth scale right of the centred ellipse: a 12 px tick every 40 px, 5 px ones halfway."""
    ruled = gray.copy()
    for step in range(11):
        y = 10 + step * RULER_GAP_PX // 2
        cv2.line(ruled, (290, y), (290 + (11 if step % 2 == 0 else 4), y), 230, 1)
    return ruled


def write_ultrasound_dicom(path: Path, pixels: np.ndarray, spacing_mm: tuple[float, float]) -> Path:
    """An uncompressed MONOCHROME2 ultrasound DICOM (multi-frame when ``pixels`` is (N, H, W)), with a valid file
    meta and one ultrasound region over the image at ``spacing_mm`` (x, y)."""
    pixels = np.ascontiguousarray(pixels, np.uint8)
    multi_frame = pixels.ndim == 3
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1" if multi_frame else "1.2.840.10008.5.1.4.1.1.6.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    dataset.Modality = "US"
    dataset.Rows, dataset.Columns = pixels.shape[-2:]
    if multi_frame:
        dataset.NumberOfFrames = pixels.shape[0]
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 8, 8, 7, 0
    dataset.PixelData = pixels.tobytes()
    region = Dataset()
    region.RegionSpatialFormat, region.RegionDataType = 1, 1
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 0, 0
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = pixels.shape[-1] - 1, pixels.shape[-2] - 1
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
    region.PhysicalDeltaX, region.PhysicalDeltaY = spacing_mm[0] / 10, spacing_mm[1] / 10
    dataset.SequenceOfUltrasoundRegions = [region]
    dataset.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A model (128 px grid, 'gland' = bright) and transverse/sagittal PNGs, a DICOM transverse frame at
    0.2 x 0.2 mm/px and a black PNG."""
    spec = PreprocessSpec(crop="none", size=128, resize="letterbox", interpolation="area",
                          filter=FilterSpec(method="none"))
    paths = {"model": write_threshold_model(tmp_path / "model.onnx", tiny_contract(spec)),
             "transverse": tmp_path / "transverse.png", "sagittal": tmp_path / "sagittal.png",
             "black": tmp_path / "black.png"}
    cv2.imwrite(str(paths["transverse"]), bright_ellipse(TRANSVERSE_AXES_PX))
    cv2.imwrite(str(paths["sagittal"]), bright_ellipse(SAGITTAL_AXES_PX, 20))
    cv2.imwrite(str(paths["black"]), np.zeros(FRAME_SHAPE, np.uint8))
    paths["ruled"] = tmp_path / "ruled_transverse.png"
    cv2.imwrite(str(paths["ruled"]), with_depth_scale(bright_ellipse(TRANSVERSE_AXES_PX)))
    paths["dicom"] = write_ultrasound_dicom(tmp_path / "transverse.dcm", bright_ellipse(TRANSVERSE_AXES_PX),
                                            (0.2, 0.2))
    return paths


def trus_measure(files: dict[str, Path], *options: str, transverse: str = "transverse",
                 sagittal: str = "sagittal"):
    """Runs ``trus measure`` in-process on two of ``files`` (or other paths) with the test model."""
    first = files.get(transverse, transverse)
    second = files.get(sagittal, sagittal)
    return CliRunner().invoke(app, ["measure", str(first), str(second), "--model", str(files["model"]), *options])


def plane(file: str, semi_axes_mm, angle, spacing, source="dicom") -> PlaneInput:
    return PlaneInput(file, physical_ellipse(semi_axes_mm, angle, spacing), Calibration(spacing, source, "test"))


# ---- the measurement of given masks ---------------------------------------------------------------------------


def test_measure_masks_reports_the_three_diameters_the_volume_and_the_psa_density():
    report = measure_masks(plane("t.dcm", (25.0, 15.0), 10, (0.2, 0.2)),
                           plane("s.dcm", (20.0, 14.0), 30, (0.25, 0.2)), psa=6.0)
    assert set(report) == REPORT_KEYS
    assert set(report["transverse"]) == PLANE_KEYS | {"width", "height"}
    assert set(report["sagittal"]) == PLANE_KEYS | {"length", "height"}
    assert set(report["transverse"]["width"]) == CALIPER_KEYS
    # Ellipses of 50 x 30 mm and 40 x 28 mm; each diameter at most 2 px (0.4-0.5 mm) short, see test_gland_size.
    assert report["width_mm"] == pytest.approx(50.0, abs=0.4) == report["transverse"]["width"]["mm"]
    assert report["height_mm"] == pytest.approx(30.0, abs=0.4)
    assert report["length_mm"] == pytest.approx(40.0, abs=0.5)
    assert report["sagittal"]["height"]["mm"] == pytest.approx(28.0, abs=0.5)
    assert report["volume_ml"] == pytest.approx(
        ellipsoid_volume_ml(report["length_mm"], report["width_mm"], report["height_mm"]), abs=1e-3)
    assert report["volume_ml"] == pytest.approx(31.416, rel=0.04) and report["volume_note"] is None
    assert report["psa"] == {"psa_ng_per_ml": 6.0, "threshold": 0.15, "reaches_threshold": True,
                             "density_ng_per_ml_per_cc": pytest.approx(6.0 / report["volume_ml"], abs=1e-4)}
    assert report["transverse"]["spacing_mm"] == [0.2, 0.2] and report["sagittal"]["spacing_source"] == "dicom"
    json.dumps(report)  # JSON as it is
    text = report_text(report)
    width = report["transverse"]["width"]
    assert f"width  (transverse, largest extent):  {width['mm']:.1f} mm ({width['px']:.1f} px)" in text
    assert f"volume: {report['volume_ml']:.1f} mL" in text and "reaches the threshold 0.15" in text


def test_measure_masks_without_a_sagittal_spacing_reports_pixels_there_and_no_volume():
    sagittal = PlaneInput("s.png", physical_ellipse((20.0, 14.0), 0, (0.2, 0.2)),
                          Calibration(None, "none", "no DICOM spacing, no depth scale, no manual calibration"))
    report = measure_masks(plane("t.dcm", (25.0, 15.0), 0, (0.2, 0.2)), sagittal, psa=6.0)
    assert report["length_mm"] is None and report["sagittal"]["length"]["mm"] is None
    assert report["sagittal"]["length"]["px"] == pytest.approx(200.0, abs=2.0)
    assert report["width_mm"] == pytest.approx(50.0, abs=0.4)  # the transverse frame keeps its mm
    assert report["volume_ml"] is None and "no pixel spacing for the sagittal frame" in report["volume_note"]
    assert report["psa"] == {"psa_ng_per_ml": 6.0, "density_ng_per_ml_per_cc": None, "threshold": 0.15,
                             "reaches_threshold": None}
    text = report_text(report)
    assert "px (no mm: no pixel spacing)" in text and "volume: unknown" in text and "--spacing-mm" in text
    assert "PSA density: unknown (it needs the volume)" in text


@pytest.mark.parametrize(
    "psa, psa_threshold, spacing, message",
    [
        (-1.0, 0.15, None, "--psa must be a finite number >= 0, got -1.0"),
        (float("nan"), 0.15, None, "--psa must be a finite number >= 0"),
        (None, 0.0, None, "--psa-threshold must be a finite number > 0, got 0.0"),
        (None, 0.15, -0.2, "--spacing-mm must be a finite number > 0, got -0.2"),
    ],
)
def test_bad_options_are_named(psa, psa_threshold, spacing, message):
    with pytest.raises(ValueError, match=message):
        check_options(psa, psa_threshold, spacing)
    with pytest.raises(ValueError, match="--tick-mm must be a finite number > 0, got 0.0"):
        check_options(None, 0.15, None, 0.0)


def test_a_model_without_a_gland_class_is_refused():
    assert gland_index(("background", "gland", "lesion"), Path("m.onnx")) == 1
    with pytest.raises(ValueError, match=r"m.onnx: the model has no 'gland' class \(its classes: lesion, cyst\)"):
        gland_index(("lesion", "cyst"), Path("m.onnx"))


# ---- the command ------------------------------------------------------------------------------------------------


def test_json_with_spacing_mm_gives_mm_a_volume_and_the_psa_density(files):
    result = trus_measure(files, "--spacing-mm", "0.25", "--psa", "6", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == REPORT_KEYS
    assert report["transverse"]["spacing_source"] == report["sagittal"]["spacing_source"] == "manual"
    assert report["transverse"]["spacing_mm"] == [0.25, 0.25]
    assert report["transverse"]["width"]["px"] == pytest.approx(200, abs=3)
    assert report["transverse"]["height"]["px"] == pytest.approx(120, abs=3)
    assert report["sagittal"]["length"]["px"] == pytest.approx(160, abs=3)
    assert report["width_mm"] == pytest.approx(report["transverse"]["width"]["px"] * 0.25, abs=1e-3)
    # 40 x 50 x 30 mm drawn: pi/6 x 60 000 mm^3 = 31.4 mL, each diameter within 3 px (0.75 mm).
    assert report["volume_ml"] == pytest.approx(31.4, rel=0.07)
    assert report["psa"]["density_ng_per_ml_per_cc"] == pytest.approx(6 / report["volume_ml"], abs=1e-4)
    assert report["psa"]["reaches_threshold"] is True


def test_without_spacing_it_reports_pixels_only_and_succeeds(files):
    result = trus_measure(files)
    assert result.exit_code == 0, result.output
    assert "transverse frame: " in result.stdout
    assert "spacing: none (no DICOM spacing, no depth scale: " in result.stdout
    assert "width  (transverse, largest extent):  " in result.stdout and "px (no mm: no pixel spacing)" in result.stdout
    assert "volume: unknown; no pixel spacing for the transverse and sagittal frames" in result.stdout
    assert "Give --spacing-mm MM_PER_PX (or --tick-mm" in result.stdout
    report = json.loads(trus_measure(files, "--json").stdout)
    assert report["volume_ml"] is None and report["width_mm"] is None and report["volume_note"]


def test_the_dicom_spacing_comes_before_spacing_mm(files):
    result = trus_measure(files, "--spacing-mm", "0.25", "--json", transverse="dicom")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["transverse"]["spacing_source"] == "dicom" and report["transverse"]["spacing_mm"] == [0.2, 0.2]
    assert report["sagittal"]["spacing_source"] == "manual"
    assert report["width_mm"] == pytest.approx(200 * 0.2, abs=3 * 0.2)
    assert report["length_mm"] == pytest.approx(160 * 0.25, abs=3 * 0.25)
    text = trus_measure(files, "--spacing-mm", "0.25", transverse="dicom").stdout
    assert "spacing: 0.2 x 0.2 mm/px from the DICOM file (its ultrasound region, else PixelSpacing)" in text
    assert "spacing: 0.25 x 0.25 mm/px from a manual calibration (--spacing-mm" in text


@pytest.mark.parametrize("tick_options, expected_mm_per_px", [((), 0.25), (("--tick-mm", "5"), 0.125)])
def test_the_depth_scale_comes_before_spacing_mm(files, tick_options, expected_mm_per_px):
    result = trus_measure(files, "--spacing-mm", "0.3", "--json", *tick_options, transverse="ruled")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["transverse"]["spacing_source"] == "depth_scale"
    assert report["transverse"]["spacing_mm"] == pytest.approx([expected_mm_per_px] * 2, rel=1e-3)
    assert "6 ticks and 5 minor" in report["transverse"]["spacing_note"]
    assert report["sagittal"]["spacing_source"] == "manual"  # no scale on that frame: the option
    assert report["width_mm"] == pytest.approx(200 * expected_mm_per_px, abs=3 * expected_mm_per_px)


@pytest.mark.parametrize(
    "threshold_options, verdict",
    [((), "reaches the threshold 0.15"), (("--psa-threshold", "0.3"), "is below the threshold 0.3")],
)
def test_psa_density_in_the_text(files, threshold_options, verdict):
    result = trus_measure(files, "--spacing-mm", "0.25", "--psa", "6", *threshold_options)
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("PSA density:"))
    assert "ng/mL/cc (PSA 6 ng/mL); " + verdict in line


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"transverse": "nowhere.png"}, "nowhere.png: no such file"),
        ({"sagittal": "black"}, "black.png: no gland found on this frame"),
        ({"sagittal": "cine"}, "30 frames; trus measure takes one frame per plane"),
        ({"options": ("--psa", "-2")}, "--psa must be a finite number >= 0"),
        ({"model": "lesion-only"}, "the model has no 'gland' class (its classes: lesion, cyst)"),
    ],
)
def test_errors_are_one_line_naming_the_file(files, tmp_path, arguments, message):
    files = {**files, "cine": Path(examples.get_path("ybr_color"))}  # pydicom's 30-frame ultrasound loop
    if arguments.get("model") == "lesion-only":
        files["model"] = write_threshold_model(tmp_path / "lesion.onnx", tiny_contract(classes=("lesion", "cyst")))
    if "nowhere" in arguments.get("transverse", ""):
        files["nowhere.png"] = tmp_path / "nowhere.png"
    result = trus_measure(files, *arguments.get("options", ()), transverse=arguments.get("transverse", "transverse"),
                          sagittal=arguments.get("sagittal", "sagittal"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert result.stdout == ""
