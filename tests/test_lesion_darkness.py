"""benchmarks/lesion_darkness.py: the darkest-disk score by hand, and the script end to end on a processed
folder whose answer is known and on the sample generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.imaging.masks import pack_masks
from pipeline.imaging.png import write_png_atomically
from pipeline.layout import IMAGES, MASKS, PROCESSED_MANIFEST

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "lesion_darkness.py"
sys.path.insert(0, str(SCRIPT.parent))
import lesion_darkness as ld  # noqa: E402

SIZE = 64


def _gland_with_spot(spot_grey: float, spot_radius: int = 6, background: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """A 64 px image: a square gland (rows and columns 8..55) of ``background`` grey with a disk at (32, 32)."""
    gray = np.full((SIZE, SIZE), 200.0, np.float32)
    gland = np.zeros((SIZE, SIZE), bool)
    gland[8:56, 8:56] = True
    gray[gland] = background
    cv2.circle(gray, (32, 32), spot_radius, float(spot_grey), -1)
    return gray, gland


@pytest.mark.parametrize(("spot_grey", "spot_radius", "radius_px", "expected"), [
    (100.0, 6, 3, 0.0),     # a uniform gland: nothing darker than its median
    (60.0, 6, 3, 40.0),     # a disk of 3 px fits inside the 6 px spot: the spot's full contrast
    (60.0, 6, 6, 40.0),     # the disk matches the spot
    (140.0, 6, 3, 0.0),     # a bright spot is never the darkest disk
])
def test_darkest_disk_by_hand(spot_grey, spot_radius, radius_px, expected):
    gray, gland = _gland_with_spot(spot_grey, spot_radius)
    assert ld.darkest_disk(gray, gland, radius_px) == pytest.approx(expected, abs=0.5)


def test_a_disk_larger_than_the_spot_averages_it_with_the_gland():
    gray, gland = _gland_with_spot(60.0, spot_radius=3)
    kernel = np.zeros((13, 13), np.uint8)
    cv2.circle(kernel, (6, 6), 6, 1, -1)
    spot = np.zeros((13, 13), np.uint8)
    cv2.circle(spot, (6, 6), 3, 1, -1)
    assert ld.darkest_disk(gray, gland, 6) == pytest.approx(40.0 * spot.sum() / kernel.sum(), abs=0.5)


def test_the_dark_rim_outside_the_gland_is_not_scored():
    gray, gland = _gland_with_spot(100.0)
    gray[~gland] = 0.0  # black around the gland: a disk reaching it would score 100 grey levels darker
    assert ld.darkest_disk(gray, gland, 5) == pytest.approx(0.0, abs=1e-3)


def test_a_gland_too_thin_for_the_disk_uses_its_deepest_part():
    gray = np.full((SIZE, SIZE), 100.0, np.float32)
    gland = np.zeros((SIZE, SIZE), bool)
    gland[30:34, 4:60] = True
    gray[30:34, 20:24] = 50.0
    assert 0.0 < ld.darkest_disk(gray, gland, 8) <= 50.0


@pytest.mark.parametrize(("radius", "gland_pixels", "message"), [
    (0, 10, "radius_px must be at least 1, got 0"),
    (3, 0, "the gland mask is empty"),
])
def test_bad_input_is_refused(radius, gland_pixels, message):
    gland = np.zeros((SIZE, SIZE), bool)
    gland.flat[:gland_pixels] = True
    with pytest.raises(ValueError, match=message):
        ld.darkest_disk(np.zeros((SIZE, SIZE), np.uint8), gland, radius)


def _write_processed(folder: Path, spacing: str = "0.5") -> None:
    """Five 64 px frames: two with a dark lesion, two lesion-free (one with a fainter spot), one without a gland."""
    (folder / IMAGES).mkdir(parents=True)
    (folder / MASKS).mkdir()
    rows = []
    for index, (has_gland, spot, lesion) in enumerate([(1, 40.0, 1), (1, 50.0, 1), (1, 80.0, 0), (1, 100.0, 0),
                                                      (0, 100.0, 0)]):
        gray, gland = _gland_with_spot(spot)
        masks = np.zeros((2, SIZE, SIZE), bool)
        masks[0] = gland & bool(has_gland)
        masks[1] = (gray < 100.0) & bool(lesion)  # the spot itself
        frame_id = f"P{index:03d}_F01"
        write_png_atomically(folder / IMAGES / f"{frame_id}.png", gray.astype(np.uint8))
        write_png_atomically(folder / MASKS / f"{frame_id}.png", pack_masks(masks))
        rows.append(f"{frame_id},{spacing}")
    (folder / PROCESSED_MANIFEST).write_text("frame_id,net_spacing_x_mm\n" + "\n".join(rows) + "\n")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_the_script_on_a_processed_folder(tmp_path: Path):
    _write_processed(tmp_path / "processed")
    run = _run("--processed", str(tmp_path / "processed"), "--radius-mm", "1.5", "3")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"{tmp_path / 'processed'}: 4 frames with a gland, 2 with a lesion",
        # 1.5 mm at 0.5 mm/px is a 3 px disk: the lesions (60 and 50 grey levels below) above the spot (20) and none
        "  disk radius 1.5 mm: AUC 1.000; at 90% sensitivity 0 of the 2 lesion-free frames score as dark",
        "  disk radius 3 mm: AUC 1.000; at 90% sensitivity 0 of the 2 lesion-free frames score as dark",
    ]


def test_the_script_on_the_generator_renders_each_frame_with_and_without_the_beam():
    run = _run("--generator", "4", "--radius-mm", "3")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "generator, 4 frames, as scanned: 4 frames with a gland, 2 with a lesion"
    assert lines[2] == "generator, 4 frames, without the beam (no speckle): 4 frames with a gland, 2 with a lesion"
    for line in (lines[1], lines[3]):
        auc = float(line.split("AUC ")[1].split(";")[0])
        assert 0.0 <= auc <= 1.0 and line.endswith("of the 2 lesion-free frames score as dark")


def test_the_picture_pairs_each_frames_echo_map_with_the_scan(tmp_path: Path):
    path = tmp_path / "lesions.jpg"
    run = _run("--generator", "2", "--radius-mm", "3", "--picture", str(path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == f"wrote {path}"
    image = cv2.imread(str(path))
    width, height = ld.PICTURE_TILE
    assert image.shape == (3 * height, 4 * width, 3)  # six frames, two per row, each echo map + scan
    # frame 1 (odd: a lesion) has its outline drawn in red on its echo map (the third tile of the first row)
    echo_map = image[:height, 2 * width:3 * width].astype(int)
    assert ((echo_map[..., 2] > 180) & (echo_map[..., 1] < 80) & (echo_map[..., 0] < 80)).sum() > 20
    scan = image[:height, 3 * width:].astype(int)
    assert ((scan[..., 2] > 180) & (scan[..., 1] < 80) & (scan[..., 0] < 80)).sum() < 5


@pytest.mark.parametrize(("args", "code", "message"), [
    (("--generator", "1"), 2, "--generator needs at least 2 frames (one with a lesion), got 1"),
    (("--processed", ".", "--picture", "x.jpg"), 2, "--picture draws generated frames: give --generator N"),
    (("--generator", "2", "--picture", "x.tif"), 2, "--picture must end in .jpg or .png, got x.tif"),
    (("--generator", "4", "--radius-mm", "0"), 2, "--radius-mm must be positive, got [0.0]"),
    ((), 2, "one of the arguments --processed --generator is required"),
])
def test_bad_arguments_stop_the_script(args, code, message):
    run = _run(*args)
    assert run.returncode == code
    assert message in run.stderr


def test_the_picture_never_replaces_a_file(tmp_path: Path):
    path = tmp_path / "mine.png"
    path.write_bytes(b"the user's")
    run = _run("--generator", "2", "--picture", str(path))
    assert run.returncode == 2
    assert f"{path} exists; give a new file name" in run.stderr
    assert path.read_bytes() == b"the user's"


def test_a_folder_without_a_manifest_or_spacing_is_named(tmp_path: Path):
    run = _run("--processed", str(tmp_path))
    assert run.returncode == 2
    assert f"{tmp_path}: no {PROCESSED_MANIFEST} (not a preprocess-stage folder)" in run.stderr
    _write_processed(tmp_path / "processed", spacing="")
    run = _run("--processed", str(tmp_path / "processed"))
    assert run.returncode == 1
    assert f"error: {tmp_path / 'processed' / PROCESSED_MANIFEST}: frame P000_F01 has no pixel spacing" in run.stderr
