"""The ONNX contract, the ONNX Runtime predictor and the `trus segment` command, on tiny real models."""

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.contract import ContractError, ModelContract
from pipeline.inference.measure import class_areas, draw_overlay
from pipeline.imaging.masks import pack_masks, read_bitmask, unpack_masks
from pipeline.imaging.png import write_png_atomically
from pipeline.inference.predictor import ModelLoadError, Segmenter
from pipeline.synthetic import render_phantom
from tests.conftest import PROJECT_ROOT, child_environment
from tests.tiny_models import tiny_contract, write_threshold_model


def bright_rectangle(height=50, width=80, box=(10, 20, 20, 30)) -> np.ndarray:
    """Black frame with a 200-grey rectangle at (top, left, rows, columns)."""
    frame = np.zeros((height, width), np.uint8)
    top, left, rows, columns = box
    frame[top:top + rows, left:left + columns] = 200
    return frame


def test_contract_round_trip_and_errors():
    contract = tiny_contract(PreprocessSpec(crop="box", crop_box=(1, 2, 30, 40), size=64,
                                            filter=FilterSpec(method="perona_malik", kappa=12.0)))
    assert ModelContract.from_json(contract.to_json()) == contract
    with pytest.raises(ContractError, match="version"):
        ModelContract.from_json('{"contract_version": 99}')
    with pytest.raises(ContractError, match="malformed"):
        ModelContract.from_json('{"contract_version": 1, "classes": ["a"]}')


@pytest.mark.parametrize("crop", ["none", "auto"])
def test_segment_maps_masks_back_to_the_original_frame(tmp_path: Path, crop):
    contract = tiny_contract(PreprocessSpec(crop=crop, size=32, filter=FilterSpec(method="none")))
    segmenter = Segmenter(write_threshold_model(tmp_path / "m.onnx", contract))
    frame = bright_rectangle()
    segmentation = segmenter.segment(frame)
    assert segmentation.probabilities.shape == (2, 50, 80)
    masks = segmentation.masks(0.5)
    truth = frame > 0
    assert np.logical_and(masks[0], truth).sum() / np.logical_or(masks[0], truth).sum() >= 0.95
    assert segmentation.classes == ("gland", "lesion")


@pytest.mark.parametrize(
    "content, with_contract, message",
    [
        (None, True, "no such model file"),
        (b"this is not onnx", True, "not a valid ONNX model"),
        ("model", False, "has no 'trus_contract' metadata"),
    ],
)
def test_bad_models_name_the_file(tmp_path: Path, content, with_contract, message):
    path = tmp_path / "model.onnx"
    if content == "model":
        write_threshold_model(path, with_contract=with_contract)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError) as error:
        Segmenter(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_bitmask_round_trip_keeps_overlapping_classes():
    masks = np.zeros((3, 4, 4), bool)
    masks[0, :2] = True
    masks[1, 1:3] = True
    masks[2, 3, 3] = True
    packed = pack_masks(masks)
    assert packed[1, 0] == 3 and packed[0, 0] == 1 and packed[3, 3] == 4 and packed[2, 0] == 2
    assert np.array_equal(unpack_masks(packed, 3), masks)


def png_rows(path: Path) -> tuple[int, list[int]]:
    """(PNG colour type, each row's filter type byte) of a non-interlaced 8-bit PNG."""
    data = path.read_bytes()
    chunks, offset = {}, 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunks[kind] = chunks.get(kind, b"") + data[offset + 8:offset + 8 + length]
        offset += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {0: 1, 2: 3}[colour]
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + width * channels * depth // 8
    assert len(raw) == height * stride
    return colour, [raw[row * stride] for row in range(height)]


@pytest.mark.parametrize("image", [
    np.random.default_rng(0).integers(0, 256, (37, 53), dtype=np.uint8),  # grey frame
    pack_masks(np.random.default_rng(1).random((3, 40, 31)) > 0.5),  # bitmask
    np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8),  # RGB overlay
], ids=["grey", "bitmask", "rgb"])
def test_pngs_are_written_losslessly_with_the_up_filter_and_no_leftovers(tmp_path: Path, image):
    path = tmp_path / "out.png"
    write_png_atomically(path, image)
    colour, row_filters = png_rows(path)
    assert colour == (2 if image.ndim == 3 else 0)
    assert set(row_filters) == {2}  # PNG filter type 2, "Up", on every row: the fast-decoding setting
    decoded = read_bitmask(path) if image.ndim == 2 else cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decoded, image)
    assert [entry.name for entry in tmp_path.iterdir()] == ["out.png"]


def test_areas_in_pixels_and_mm2():
    masks = np.zeros((2, 10, 10), bool)
    masks[0, :4, :5] = True
    areas = class_areas(masks, ["gland", "lesion"], (0.2, 0.5))
    assert [(a.name, a.pixels) for a in areas] == [("gland", 20), ("lesion", 0)]
    assert areas[0].mm2 == pytest.approx(2.0) and areas[1].mm2 == 0.0
    assert class_areas(masks, ["gland", "lesion"], None)[0].mm2 is None


def test_overlay_tints_only_the_mask():
    gray = np.full((20, 20), 100, np.uint8)
    masks = np.zeros((1, 20, 20), bool)
    masks[0, 5:15, 5:15] = True
    overlay = draw_overlay(gray, masks, opacity=0.5, colours=[(255, 0, 0)])
    assert overlay[0, 0].tolist() == [100, 100, 100]
    assert overlay[10, 10].tolist() == [178, 50, 50]


def run_trus(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          env=child_environment({"PYTHONPATH": str(PROJECT_ROOT)}), timeout=120)


def test_trus_segment_writes_masks_overlays_and_areas(tmp_path: Path):
    model = write_threshold_model(tmp_path / "m.onnx")
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "a.png"), bright_rectangle())
    cv2.imwrite(str(frames / "b.bmp"), bright_rectangle(60, 60, (10, 10, 30, 30)))
    from pydicom import examples
    dicom = examples.get_path("palette_color")
    result = run_trus("segment", str(frames), str(dicom), "--model", str(model), "--out", str(tmp_path / "out"),
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    areas = pd.read_csv(tmp_path / "out" / "areas.csv")
    assert set(areas["output"]) == {"a", "b", "examples_palette"}
    gland = areas[areas["class"] == "gland"].set_index("output")
    assert abs(gland.loc["a", "area_px"] - 600) <= 30 and abs(gland.loc["b", "area_px"] - 900) <= 90
    assert np.isnan(gland.loc["a", "area_mm2"]) and gland.loc["examples_palette", "area_mm2"] > 0
    assert gland["spacing_source"].to_dict() == {"a": "none", "b": "none", "examples_palette": "dicom"}
    mask = cv2.imread(str(tmp_path / "out" / "a_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (50, 80) and mask[20, 30] & 1 and not mask[0, 0] & 1
    assert cv2.imread(str(tmp_path / "out" / "a_overlay.png")).shape == (50, 80, 3)


@pytest.mark.parametrize(
    "setup, message",
    [
        ("bad-model", "model.onnx: not a valid ONNX model"),
        ("missing-input", "nowhere.png: no such file or folder"),
        ("corrupt-frame", "broken.png: not a readable image"),
    ],
)
def test_trus_segment_errors_are_one_line(tmp_path: Path, setup, message):
    model = tmp_path / "model.onnx"
    frame = tmp_path / "ok.png"
    cv2.imwrite(str(frame), bright_rectangle())
    inputs = [str(frame)]
    if setup == "bad-model":
        model.write_bytes(b"nope")
    else:
        write_threshold_model(model)
    if setup == "missing-input":
        inputs = [str(tmp_path / "nowhere.png")]
    if setup == "corrupt-frame":
        (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
        inputs.append(str(tmp_path / "broken.png"))
    result = run_trus("segment", *inputs, "--model", str(model), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    if setup == "corrupt-frame":  # the good frame is still segmented, completely
        assert (tmp_path / "out" / "ok_mask.png").is_file()
        assert not list((tmp_path / "out").glob("*.partial"))


def test_trus_segment_takes_the_spacing_from_the_depth_scale_else_spacing_mm(tmp_path: Path):
    """A sample frame's burned-in depth scale gives its spacing (within 0.5% of the generator's); a frame
    without one takes --spacing-mm; the CSV says which, and the mm² follow."""
    rendered = render_phantom(np.random.default_rng(4), 640, 436, with_lesion=False)
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "scan.png"), rendered.image)
    cv2.imwrite(str(frames / "plain.png"), bright_rectangle())
    cv2.imwrite(str(frames / "black.png"), np.zeros((50, 80), np.uint8))  # no gland: flagged for review
    result = run_trus("segment", str(frames), "--model", str(write_threshold_model(tmp_path / "m.onnx")),
                      "--out", str(tmp_path / "out"), "--spacing-mm", "0.3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    gland = pd.read_csv(tmp_path / "out" / "areas.csv").query("`class` == 'gland'").set_index("output")
    assert gland.loc["scan", "spacing_source"] == "depth_scale"
    assert gland.loc["scan", "spacing_y_mm"] == pytest.approx(rendered.spacing_mm, rel=0.005)
    assert gland.loc["plain", "spacing_source"] == "manual" and gland.loc["plain", "spacing_x_mm"] == 0.3
    assert gland.loc["plain", "review"] == "no" and np.isnan(gland.loc["plain", "review_reason"])
    assert gland.loc["black", "review"] == "yes" and gland.loc["black", "review_reason"] == "no gland found"
    for output, row in gland.iterrows():
        assert row["area_mm2"] == pytest.approx(row["area_px"] * row["spacing_x_mm"] * row["spacing_y_mm"], rel=1e-3)
