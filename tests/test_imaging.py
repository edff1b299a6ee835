"""Geometry, transform and frame reading (all torch-free); filters: test_filters.py; fan: test_fan.py."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.imaging.frames import FrameReadError, read_frame, read_frames
from pipeline.imaging.geometry import FrameGeometry, plan_geometry, to_network_grid, to_original_frame
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.imaging.preprocessing import network_input, preprocess_frame, preprocess_mask
from tests.test_fan import fan_frame


@pytest.mark.parametrize(
    "frame, box, size, resize, expected",
    [
        # 1280x872 letterboxed into 768: scale 0.6 -> 768x523, padded 122 top
        ((1280, 872), (0, 0, 1280, 872), 768, "letterbox", (768, 523, 0, 122)),
        ((1280, 872), (0, 0, 1280, 872), 768, "stretch", (768, 768, 0, 0)),
        # a tall crop letterboxed: pads left/right
        ((640, 480), (100, 0, 200, 400), 100, "letterbox", (50, 100, 25, 0)),
        # a box reaching past the frame is clipped to it
        ((100, 80), (-10, 40, 200, 100), 64, "letterbox", (64, 26, 0, 19)),
    ],
)
def test_plan_geometry(frame, box, size, resize, expected):
    g = plan_geometry(*frame, box, size, resize)
    assert (g.content_width, g.content_height, g.pad_left, g.pad_top) == expected
    assert 0 <= g.crop_x and g.crop_x + g.crop_width <= frame[0]
    assert FrameGeometry.from_dict(g.to_dict()) == g


def test_box_outside_frame_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        plan_geometry(100, 100, (200, 200, 10, 10), 32, "letterbox")


@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
@pytest.mark.parametrize("frame_size, box", [((1280, 872), (200, 60, 900, 780)), ((320, 240), (0, 0, 320, 240))])
def test_mask_round_trip_iou(resize, frame_size, box):
    width, height = frame_size
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (box[0] + box[2] // 2, box[1] + box[3] // 2), (box[2] // 4, box[3] // 5), 20, 0, 360, 1, -1)
    g = plan_geometry(width, height, box, 256, resize)
    grid = to_network_grid(mask.astype(np.float32), g, "area")
    back = to_original_frame(grid, g, "linear") > 0.5
    iou = np.logical_and(back, mask).sum() / np.logical_or(back, mask).sum()
    assert iou >= 0.98


def test_padding_is_zero_and_content_placed():
    g = plan_geometry(200, 100, (0, 0, 200, 100), 64, "letterbox")
    grid = to_network_grid(np.full((100, 200), 9, np.uint8), g, "nearest")
    assert grid.shape == (64, 64)
    assert (grid[: g.pad_top] == 0).all() and (grid[g.pad_top + g.content_height:] == 0).all()
    assert (grid[g.pad_top:g.pad_top + g.content_height] == 9).all()


def test_preprocess_frame_and_mask_share_geometry():
    frame, _ = fan_frame()
    spec = PreprocessSpec(size=128, filter=FilterSpec(method="isotropic", time=1.0))
    processed = preprocess_frame(frame, spec)
    assert processed.image.shape == (128, 128) and processed.image.dtype == np.uint8
    mask = preprocess_mask((frame > 0).astype(np.uint8), processed.geometry)
    assert mask.shape == (128, 128)
    assert processed.image[mask == 0].mean() < 20 < processed.image[mask == 1].mean()


def test_network_input_normalisation():
    tensor = network_input(np.array([[[0, 255]]], np.uint8), mean=0.5, std=0.25)
    assert tensor.shape == (1, 1, 1, 2) and tensor.dtype == np.float32
    assert tensor.ravel().tolist() == pytest.approx([-2.0, 2.0])


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_read_raster_formats(tmp_path: Path, suffix):
    image = np.zeros((30, 40, 3), np.uint8)
    image[5:15, 10:30] = (200, 200, 200)
    path = tmp_path / f"frame{suffix}"
    cv2.imwrite(str(path), image)
    frame = read_frame(path)
    assert frame.gray.shape == (30, 40) and frame.spacing_mm is None
    assert abs(int(frame.gray[10, 20]) - 200) <= 3 and frame.gray[25, 5] <= 3


def test_read_16_bit_png_is_scaled(tmp_path: Path):
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.array([[0, 1000], [2000, 4000]], np.uint16))
    assert read_frame(path).gray.tolist() == [[0, 64], [128, 255]]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.png", None, "no such file"),
        ("notes.txt", b"hello", "unsupported file type"),
        ("broken.png", b"\x89PNG\r\n\x1a\n garbage", "not a readable image"),
        ("empty.jpg", b"", "not a readable image"),
        ("bad.dcm", b"not dicom at all", "not a readable DICOM"),
    ],
)
def test_bad_frames_name_file_and_problem(tmp_path: Path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(FrameReadError) as error:
        read_frame(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_truncated_jpeg_is_an_error(tmp_path: Path):
    path = tmp_path / "cut.jpg"
    ok, data = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(FrameReadError, match="cut.jpg"):
        read_frame(path)


@pytest.mark.parametrize(
    "example, frames",
    # pydicom's real ultrasound files; their region boxes reach past the image
    [("palette_color", 1), ("ybr_color", 30)],
)
def test_pydicom_ultrasound_examples(example, frames):
    from pydicom import dcmread, examples

    path = examples.get_path(example)
    dataset = dcmread(path)
    region = dataset.SequenceOfUltrasoundRegions[0]
    decoded = list(read_frames(path))
    assert len(decoded) == frames
    assert decoded[0].gray.shape == (dataset.Rows, dataset.Columns)
    assert decoded[0].spacing_mm == pytest.approx((region.PhysicalDeltaX * 10, region.PhysicalDeltaY * 10))
    assert decoded[0].gray.std() > 5  # real image content, not a blank conversion
