"""Raw scans -> de-identified frames + manifest, the TIFF channel choice, and the join after Roboflow."""

import hashlib
import re
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import tifffile
from PIL import Image
from pydicom import dcmread, examples

from pipeline.config import DataParams
from pipeline.files.output_folder import OutputFolderError
from pipeline.imaging.dicom import dicom_region_boxes
from pipeline.imaging.frames import FrameReadError, read_frames
from pipeline.ingest import raw_scans
from pipeline.ingest.frames_manifest import join_frames_manifest
from pipeline.ingest.names import parse_export_name, patient_of
from pipeline.ingest.raw_scans import NAME_PATTERN, extract_frames
from pipeline.ingest.records import IngestError
from pipeline.layout import IMAGES, MANIFEST

SECRET = b"hospital-secret-0123456789"
PATIENT_DIR = "Doe^John_1970"
IDENTITY = {"PatientName": "Doe^John", "PatientID": "PID-4711-0815", "PatientBirthDate": "19700101",
            "InstitutionName": "St Elsewhere General", "ReferringPhysicianName": "Dr^Kildare",
            "AccessionNumber": "ACC-998877", "OperatorsName": "Sono^Grapher"}
SOURCE_NAMES = ("us_palette.dcm", "US0001.dcm", "US0002", "still.png", "still.bmp", "still.jpg", "flair.tif")
TIFF_CHANNEL, TIFF_VALUE = 3, 130  # channel c of the 6-channel TIFF holds 40 c + 10


def write_tiff(path: Path, channels: int, planar: str = "contig") -> None:
    stack = np.stack([np.full((20, 30), 40 * c + 10, np.uint8) for c in range(channels)], axis=-1)
    if planar == "separate":
        tifffile.imwrite(path, np.moveaxis(stack, -1, 0), photometric="minisblack", planarconfig="separate")
    elif channels == 3:  # RGB, as the LGG brain-MRI TIFFs, written by Pillow with LZW
        Image.fromarray(stack).save(path, compression="tiff_lzw")
    else:
        tifffile.imwrite(path, stack.squeeze(), photometric="minisblack", planarconfig="contig")


def dicom_copy(example: str, target: Path, **tags: str) -> None:
    dataset = dcmread(examples.get_path(example))
    for keyword, value in {**IDENTITY, **tags}.items():
        setattr(dataset, keyword, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(target, enforce_file_format=True)


def still(seed: int) -> np.ndarray:
    """A smooth (48, 64) uint8 test image (JPEG keeps it within a few grey levels)."""
    return (np.add.outer(np.arange(48) * 2, np.arange(64) * 3) + 7 * seed).astype(np.uint8)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scanner") / "raw"
    patient = root / PATIENT_DIR
    dicom_copy("palette_color", patient / "us_palette.dcm")
    dicom_copy("ybr_color", patient / "cine" / "US0001.dcm")
    dicom_copy("ybr_color", patient / "cine" / "US0002", SOPInstanceUID="1.2.3.4.5")  # no suffix: DICM preamble
    (patient / "stills").mkdir()
    for name in ("still.png", "still.bmp"):
        cv2.imwrite(str(patient / "stills" / name), still(0))
    cv2.imwrite(str(patient / "stills" / "still.jpg"), still(0))
    shutil.copy(patient / "stills" / "still.png", patient / "still_copy.png")  # byte-identical: skipped
    write_tiff(patient / "flair.tif", 6)
    (patient / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    (patient / "notes.txt").write_text("Doe^John, scanned 2024-01-02")
    (root / "Roe^Jane_1980").mkdir()
    cv2.imwrite(str(root / "Roe^Jane_1980" / "still.png"), still(1))
    return root


@pytest.fixture(scope="module")
def extracted(raw, tmp_path_factory) -> tuple[Path, raw_scans.FramesReport]:
    out = tmp_path_factory.mktemp("out") / "frames"
    return out, extract_frames(raw, out, SECRET, channel=TIFF_CHANNEL)


def test_frames_manifest_and_report(extracted):
    out, report = extracted
    manifest = pd.read_csv(out / MANIFEST).fillna({"modality": ""})
    assert list(manifest.columns) == list(raw_scans.MANIFEST_COLUMNS) and len(manifest) == 66
    pd.testing.assert_frame_equal(manifest, report.manifest, check_dtype=False)
    frames_per_source = manifest.groupby(["source_kind", "source_digest"]).size()
    assert sorted(frames_per_source["dicom"]) == [1, 30, 30]  # palette_color, ybr_color twice
    assert manifest["source_kind"].value_counts().to_dict() == {"dicom": 61, "png": 2, "bmp": 1, "jpeg": 1, "tiff": 1}
    assert (report.ignored, report.duplicates, report.unblanked_frames, report.mixed_folders) == (1, 1, 5, 1)
    assert len(report.errors) == 1 and "broken.png" in report.errors[0]
    assert set(manifest["modality"].fillna("")) == {"US", ""}
    assert sorted(p.name for p in (out / IMAGES).iterdir()) == sorted(manifest["original_name"])
    assert [p.name for p in out.parent.iterdir()] == ["frames"]  # no staging folder left


def test_names_carry_the_patient_key(extracted):
    manifest = extracted[1].manifest
    for row in manifest.itertuples():
        assert re.match(NAME_PATTERN, row.original_name)
        assert patient_of(row.original_name, DataParams().patient_pattern) == row.patient


def test_keys_group_patients_and_studies(extracted):
    manifest = extracted[1].manifest
    dicom, other = manifest[manifest["source_kind"] == "dicom"], manifest[manifest["source_kind"] != "dicom"]
    assert dicom["patient"].nunique() == 1  # one PatientID
    assert dicom.groupby("study")["source_digest"].nunique().sort_values().tolist() == [1, 2]  # 2 StudyInstanceUIDs
    assert other["patient"].nunique() == 2  # the Doe and Roe folders
    assert not set(other["patient"]) & set(dicom["patient"])  # counted in report.mixed_folders


@pytest.mark.parametrize("example", ["palette_color", "ybr_color"])
def test_spacing_from_clipped_region_and_blanking(extracted, example):
    out, report = extracted
    dataset = dcmread(examples.get_path(example))
    region = dataset.SequenceOfUltrasoundRegions[0]
    assert region.RegionLocationMaxX1 >= dataset.Columns or region.RegionLocationMaxY1 >= dataset.Rows
    boxes = dicom_region_boxes(dataset, dataset.Columns, dataset.Rows)
    assert boxes and all(0 <= x0 <= x1 < dataset.Columns and 0 <= y0 <= y1 < dataset.Rows for x0, y0, x1, y1 in boxes)
    rows = report.manifest[report.manifest["width"] == dataset.Columns]
    assert len(rows) == int(dataset.get("NumberOfFrames", 1)) * (2 if example == "ybr_color" else 1)
    assert rows[["spacing_x_mm", "spacing_y_mm"]].to_numpy() == pytest.approx(
        np.tile([region.PhysicalDeltaX * 10, region.PhysicalDeltaY * 10], (len(rows), 1)))
    inside = np.zeros((dataset.Rows, dataset.Columns), bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1 + 1, x0:x1 + 1] = True
    original = next(read_frames(examples.get_path(example))).gray
    assert (original[~inside] > 0).sum() > 1000  # burned-in text and scales outside the regions
    for row in rows.itertuples():
        gray = cv2.imread(str(out / IMAGES / row.original_name), cv2.IMREAD_UNCHANGED)
        assert gray.shape == original.shape and (gray[~inside] == 0).all()
        assert row.frame > 0 or np.array_equal(gray[inside], original[inside])


def test_other_frames_keep_their_pixels_and_tiff_channel(extracted):
    out, report = extracted
    by_kind = {row.source_kind: row.original_name for row in report.manifest.itertuples() if row.source_kind != "dicom"}
    gray = {kind: cv2.imread(str(out / IMAGES / name), cv2.IMREAD_UNCHANGED) for kind, name in by_kind.items()}
    assert np.array_equal(gray["bmp"], still(0))
    assert np.abs(gray["jpeg"].astype(int) - still(0)).mean() < 10
    assert (gray["tiff"] == TIFF_VALUE).all()


def test_no_identifier_survives(extracted, raw):
    out, _ = extracted
    secrets = set(IDENTITY.values()) | {"John", PATIENT_DIR, "Roe^Jane", "us_palette", "US0001",
                                        "still", "flair", "scanner", str(raw)}
    for path in sorted((raw / PATIENT_DIR).rglob("*")):
        if path.suffix == ".dcm" or path.name == "US0002":
            dataset = dcmread(path, stop_before_pixels=True)
            secrets |= {str(dataset[k].value) for k in ("StudyInstanceUID", "SOPInstanceUID", "StudyDate")}
    def every_byte(root: Path) -> bytes:
        return b"\n".join(str(p).encode() + b"\0" + (p.read_bytes() if p.is_file() else b"") for p in root.rglob("*"))

    assert all(value.encode() in every_byte(raw) for value in secrets)  # the values are real
    blob = every_byte(out).replace(str(out).encode(), b"")
    assert all(value.encode() not in blob for value in secrets)


def test_pngs_hold_pixels_only(extracted):
    out, _ = extracted
    for path in sorted((out / IMAGES).iterdir())[:8]:
        data, chunks, offset = path.read_bytes(), [], 8
        while offset < len(data):
            length, kind = struct.unpack(">I4s", data[offset:offset + 8])
            chunks.append(kind)
            offset += length + 12
        assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}
        with Image.open(path) as image:
            assert image.mode == "L" and not image.info.get("dpi") and not getattr(image, "text", {})


def test_keys_are_stable_per_secret(raw, extracted, tmp_path):
    first = extracted[1].manifest
    again = extract_frames(raw, tmp_path / "again", SECRET, channel=TIFF_CHANNEL).manifest
    other = extract_frames(raw, tmp_path / "other", b"another-secret-0123456789", channel=TIFF_CHANNEL).manifest
    assert again.equals(first)
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (tmp_path / "again" / IMAGES).iterdir()}
    assert digest == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (extracted[0] / IMAGES).iterdir()}
    assert not set(other["patient"]) & set(first["patient"]) and not set(other["study"]) & set(first["study"])


@pytest.mark.parametrize(
    "channels, planar, channel, expected",
    [
        (6, "contig", 3, 130),
        (6, "separate", 5, 210),
        (3, "contig", 1, 50),  # the FLAIR channel of an LGG brain-MRI TIFF
        (1, "contig", 0, 10),
        (6, "contig", 6, "channel 6 requested, the file has 6 channel(s)"),
        (1, "contig", 1, "channel 1 requested, the file has 1 channel(s)"),
        (6, "contig", None, "6 channels"),
    ],
)
def test_tiff_channel(tmp_path, channels, planar, channel, expected):
    path = tmp_path / "stack.tif"
    write_tiff(path, channels, planar)
    if isinstance(expected, str):
        with pytest.raises(FrameReadError, match=re.escape(expected)) as error:
            list(read_frames(path, channel))
        assert str(path) in str(error.value)
    else:
        assert (next(read_frames(path, channel)).gray == expected).all()


def test_channel_leaves_other_formats_alone(tmp_path):
    cv2.imwrite(str(tmp_path / "rgb.png"), np.dstack([still(0)] * 3))
    assert np.array_equal(next(read_frames(tmp_path / "rgb.png", channel=5)).gray, still(0))


def test_refusals_leave_nothing_behind(raw, tmp_path, monkeypatch):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    (tmp_path / "junk" / "p1").mkdir(parents=True)
    (tmp_path / "junk" / "p1" / "bad.dcm").write_bytes(b"nope")
    cases = [(raw, tmp_path / "used", OutputFolderError, "output folder is not empty"),
             (raw, raw / PATIENT_DIR / "out", OutputFolderError, "output folder lies inside the source"),
             (tmp_path / "junk", tmp_path / "none", IngestError, "no frame could be read")]
    for raw_dir, out, error, message in cases:
        with pytest.raises(error, match=message):
            extract_frames(raw_dir, out, SECRET)
    with pytest.raises(ValueError, match="16 bytes"):
        extract_frames(raw, tmp_path / "short", b"short")
    def full_disk(path: Path, image: np.ndarray) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(raw_scans, "write_png_atomically", full_disk)
    with pytest.raises(OSError, match="disk full"):
        extract_frames(raw, tmp_path / "full", SECRET, channel=TIFF_CHANNEL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk", "used"]


def roboflow_name(original: str) -> str:
    stem, ext = original.rsplit(".", 1)
    return f"{stem}_{ext}.rf.{hashlib.md5(original.encode()).hexdigest()}.jpg"


def test_join_after_roboflow_round_trip(extracted):
    out, report = extracted
    originals = [parse_export_name(roboflow_name(name)).original_name for name in report.manifest["original_name"]]
    pull = pd.DataFrame({"original_name": [*originals, "P007_F03.png"]})
    pull["patient"] = [patient_of(name, DataParams().patient_pattern) for name in pull["original_name"]]
    pull["width"], pull["height"] = [*report.manifest["width"], 1280], [*report.manifest["height"], 872]
    pull["spacing_x_mm"] = pull["spacing_y_mm"] = np.nan
    with pytest.warns(UserWarning, match="1 of 67 frame"):
        joined = join_frames_manifest(pull, out / MANIFEST)
    assert joined["patient"].tolist() == [*report.manifest["patient"], "P007"]
    expected = report.manifest[["spacing_x_mm", "spacing_y_mm"]].to_numpy()
    np.testing.assert_allclose(joined[["spacing_x_mm", "spacing_y_mm"]].to_numpy()[:-1], expected)
    assert np.isnan(joined.iloc[-1]["spacing_x_mm"])  # unmatched: kept
    assert pull["spacing_x_mm"].isna().all()  # input untouched


def test_join_refuses_resized_frames(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_text("original_name,patient,width,height,spacing_x_mm,spacing_y_mm\nA_1.png,PTA,800,350,0.26,0.26\n")
    pull = pd.DataFrame({"original_name": ["A_1.png"], "patient": ["A"], "width": [640], "height": [640],
                         "spacing_x_mm": [np.nan], "spacing_y_mm": [np.nan]})
    with pytest.raises(IngestError, match="A_1.png, differ in width/height"):
        join_frames_manifest(pull, path)
    pull[["width", "height"]] = [[800, 350]]
    assert join_frames_manifest(pull, path)[["patient", "spacing_x_mm"]].values.tolist() == [["PTA", 0.26]]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a readable frames manifest"),
        (b"original_name,patient\nA_1.png,PTA\n", "missing column(s) spacing_x_mm, spacing_y_mm"),
        (b"original_name,patient,spacing_x_mm,spacing_y_mm\nA_1.png,,0.2,0.2\n", "empty original_name or patient"),
        (b"original_name,patient,spacing_x_mm,spacing_y_mm\nA_1.png,PTA,wide,0.2\n", "spacing_x_mm must be"),
        (b"original_name,patient,spacing_x_mm,spacing_y_mm\nA_1.png,PTA,,\nA_1.jpg,PTA,,\n", "appears twice: A_1"),
        (b"\xff\xfe\x00garbage\x00\xff", "frames manifest"),
    ],
)
def test_malformed_frames_manifest(tmp_path, content, message):
    path = tmp_path / "manifest.csv"
    path.write_bytes(content)
    pull = pd.DataFrame({"original_name": ["A_1.png"], "patient": ["A"], "spacing_x_mm": [np.nan], "spacing_y_mm": [np.nan]})
    with pytest.raises(IngestError, match=re.escape(message)) as error:
        join_frames_manifest(pull, path)
    assert str(path) in str(error.value)
