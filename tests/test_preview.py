"""`trus preprocess`: the processed frame equals the one implementation's, and its geometry maps back."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom import examples
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.imaging.frames import read_frame
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.imaging.preprocessing import preprocess_frame
from pipeline.cli.preprocess import preview_frame
from tests.tiny_models import tiny_contract, write_threshold_model

SPEC = PreprocessSpec(crop="auto", size=96, resize="letterbox", interpolation="area",
                      filter=FilterSpec(method="perona_malik", iterations=3))


@pytest.fixture
def fan_frame(tmp_path: Path) -> Path:
    """A 200x120 frame: a bright sector below a text strip, as JPEG."""
    gray = np.zeros((120, 200), np.uint8)
    cv2.ellipse(gray, (100, 10), (100, 100), 0, 45, 135, 150, thickness=-1)
    cv2.putText(gray, "SYNTHETIC 5MHz", (2, 115), cv2.FONT_HERSHEY_PLAIN, 0.8, 255, 1)
    path = tmp_path / "fan.jpg"
    cv2.imwrite(str(path), gray)
    return path


def test_preview_writes_what_the_network_sees(fan_frame: Path, tmp_path: Path):
    written = preview_frame(fan_frame, SPEC, tmp_path / "out", spec_source="test")
    expected = preprocess_frame(read_frame(fan_frame).gray, SPEC)
    np.testing.assert_array_equal(cv2.imread(str(written.image), cv2.IMREAD_UNCHANGED), expected.image)
    record = json.loads(written.geometry.read_text())
    x, y, w, h = record["crop_box"]
    assert record["frame_size"] == [200, 120] and (x, y, w, h) == (expected.geometry.crop_x, expected.geometry.crop_y,
                                                                   expected.geometry.crop_width,
                                                                   expected.geometry.crop_height)
    assert 0 <= x and x + w <= 200 and 0 <= y and y + h <= 120 and w < 200  # the text strip is cropped away
    pad = record["padding"]
    content_w, content_h = record["content_size"]
    assert pad["left"] + content_w + pad["right"] == 96 and pad["top"] + content_h + pad["bottom"] == 96
    assert record["scale"] == pytest.approx([content_w / w, content_h / h])
    assert record["spacing_mm"] is None and record["network_spacing_mm"] is None
    assert record["preprocess"] == SPEC.to_dict() and record["spec_source"] == "test"


def test_dicom_spacing_is_carried_to_the_network_grid(tmp_path: Path):
    path = Path(examples.get_path("palette_color"))
    written = preview_frame(path, SPEC, tmp_path)
    record = json.loads(written.geometry.read_text())
    spacing = read_frame(path).spacing_mm
    assert spacing is not None and record["spacing_mm"] == pytest.approx(list(spacing))
    assert record["network_spacing_mm"] == pytest.approx([spacing[0] / record["scale"][0],
                                                          spacing[1] / record["scale"][1]])


def test_cli_uses_the_model_spec_and_reports_bad_frames(fan_frame: Path, tmp_path: Path):
    model_spec = PreprocessSpec(crop="none", size=48, filter=FilterSpec(method="isotropic", time=1.0))
    model = write_threshold_model(tmp_path / "model.onnx", tiny_contract(model_spec))
    runner = CliRunner()
    result = runner.invoke(app, ["preprocess", str(fan_frame), "--out", str(tmp_path / "p"), "--model", str(model)])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "p" / "fan_geometry.json").read_text())
    assert record["preprocess"] == model_spec.to_dict() and record["crop_box"] == [0, 0, 200, 120]
    assert cv2.imread(str(tmp_path / "p" / "fan_processed.png"), cv2.IMREAD_UNCHANGED).shape == (48, 48)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    result = runner.invoke(app, ["preprocess", str(broken), "--out", str(tmp_path / "q")])
    assert result.exit_code == 2 and "broken.png" in result.output and not (tmp_path / "q").exists()


def test_dicom_crop_uses_the_region_in_the_clinic_and_in_training(tmp_path: Path):
    """`crop: dicom`: the predictor (app, trus segment) and the preprocess stage both crop to the region."""
    import pandas as pd

    from pipeline.inference.predictor import Segmenter
    from pipeline.stages.preprocess import region_box_of

    path = Path(examples.get_path("palette_color"))
    frame = read_frame(path)
    assert frame.region_box is not None
    spec = PreprocessSpec(crop="dicom", size=64, filter=FilterSpec(method="none"))
    segmenter = Segmenter(write_threshold_model(tmp_path / "model.onnx", tiny_contract(spec)))
    geometry = segmenter.segment(frame.gray, frame.region_box).geometry
    assert (geometry.crop_x, geometry.crop_y, geometry.crop_width, geometry.crop_height) == frame.region_box
    row = pd.Series(dict(zip(("region_x", "region_y", "region_width", "region_height"), frame.region_box)))
    assert region_box_of(row) == frame.region_box
    assert region_box_of(pd.Series({"region_x": float("nan")})) is None
    assert preprocess_frame(frame.gray, spec, region_box=region_box_of(row)).geometry == geometry
