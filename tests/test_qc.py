"""Annotation quality findings on hand-made frames and manifests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import QcParams
from pipeline.ingest.names import parse_export_name
from pipeline.ingest.qc import (Finding, blocking, export_findings, frame_findings, is_self_intersecting, pixel_digest,
                                read_report, summarise, write_report)
from pipeline.ingest.records import ExportFrame

CLASSES = ("gland", "lesion")
WIDTH, HEIGHT = 64, 48
FILE = "P001_F01_png.rf.0123456789abcdef0123456789abcdef.jpg"


def ring(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, np.float32)


SQUARE = ring((10, 10), (30, 10), (30, 30), (10, 30))
BOW_TIE = ring((10, 10), (30, 30), (30, 10), (10, 30))
TINY = ring((40, 20), (43, 20), (43, 23), (40, 23))
FLAT = ring((10, 40), (20, 40), (15, 40))
OUTSIDE = ring((40, 10), (WIDTH + 5, 10), (WIDTH + 5, 30), (40, 30))
OFF_IMAGE = ring((100, 100), (120, 100), (120, 120))


def make_frame(gland: tuple[np.ndarray, ...] = (), lesion: tuple[np.ndarray, ...] = (),
               annotated: bool | None = None, file_name: str = FILE) -> ExportFrame:
    """A polygon frame, one single-ring object per ring given."""
    shapes = (tuple((r,) for r in gland), tuple((r,) for r in lesion))
    return ExportFrame(Path("train") / file_name, "train", parse_export_name(file_name), WIDTH, HEIGHT,
                       annotated=bool(gland or lesion) if annotated is None else annotated, shapes=shapes)


def kinds(frame: ExportFrame, image_size: tuple[int, int] = (WIDTH, HEIGHT), patient_known: bool = True,
          qc: QcParams = QcParams()) -> list[str]:
    return sorted(f.kind for f in frame_findings(frame, image_size, frame.masks(len(CLASSES)), patient_known,
                                                  CLASSES, qc))


@pytest.mark.parametrize("frame, image_size, patient_known, expected", [
    (make_frame(gland=(SQUARE,)), (WIDTH, HEIGHT), True, []),
    (make_frame(gland=(BOW_TIE,)), (WIDTH, HEIGHT), True, ["self_intersecting"]),
    (make_frame(gland=(SQUARE,), lesion=(TINY,)), (WIDTH, HEIGHT), True, ["tiny_polygon"]),
    (make_frame(gland=(SQUARE,), lesion=(OUTSIDE,)), (WIDTH, HEIGHT), True, ["outside_image"]),
    (make_frame(lesion=(FLAT,)), (WIDTH, HEIGHT), True, ["empty_mask"]),
    (make_frame(gland=(SQUARE, OFF_IMAGE)), (WIDTH, HEIGHT), True, ["empty_mask", "outside_image"]),
    (make_frame(annotated=True), (WIDTH, HEIGHT), True, ["empty_mask"]),  # e.g. a mask format with a blank mask
    (make_frame(gland=(SQUARE,)), (WIDTH + 1, HEIGHT), True, ["size_mismatch"]),
    (make_frame(gland=(SQUARE,)), (WIDTH, HEIGHT), False, ["unknown_patient"]),
    (make_frame(), (WIDTH, HEIGHT), True, []),  # unannotated background frame
], ids=["clean", "bow-tie", "tiny", "outside", "degenerate", "off-image", "annotated-blank", "size", "patient",
        "background"])
def test_frame_findings(frame, image_size, patient_known, expected):
    assert kinds(frame, image_size, patient_known) == expected


def test_findings_name_the_frame_class_and_action():
    [finding] = frame_findings(make_frame(lesion=(OUTSIDE,)), (WIDTH, HEIGHT), make_frame(lesion=(OUTSIDE,)).masks(2),
                               True, CLASSES, QcParams())
    assert (finding.kind, finding.action, finding.frame) == ("outside_image", "error", FILE)
    assert "lesion object 0" in finding.detail and "up to 5.5 px" in finding.detail


@pytest.mark.parametrize("points, crossing", [
    (((0, 0), (10, 10), (10, 0), (0, 10)), True),  # bow-tie
    (((0, 0), (10, 0), (10, 10), (0, 10)), False),  # square
    (((0, 0), (10, 0), (10, 10), (0, 10), (0, 0)), False),  # explicitly closed
    (((0, 0), (10, 0), (10, 0), (10, 10), (0, 10)), False),  # repeated vertex
    (((0, 0), (10, 0), (10, 10), (5, 0), (0, 10)), True),  # touches its own edge
    (((0, 0), (10, 0), (5, 0), (5, 5)), True),  # folds back onto the previous edge
    (((0, 0), (10, 0), (10, 10), (6, 2), (4, 2), (0, 10)), False),  # concave
])
def test_self_intersection(points, crossing):
    assert is_self_intersecting(ring(*points)) is crossing


def test_ignore_suppresses_and_blocking_picks_errors():
    frame = make_frame(gland=(BOW_TIE,), lesion=(TINY, OUTSIDE))
    assert kinds(frame, qc=QcParams(tiny_polygon="ignore", self_intersecting="ignore")) == ["outside_image"]
    findings = frame_findings(frame, (WIDTH, HEIGHT), frame.masks(2), False, CLASSES,
                              QcParams(unknown_patient="error", outside_image="warn"))
    assert sorted(f.kind for f in blocking(findings)) == ["unknown_patient"]


def manifest(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    """Rows (frame_id, original_name, px_gland, px_lesion)."""
    table = pd.DataFrame(rows, columns=["frame_id", "original_name", "px_gland", "px_lesion"])
    return table.assign(export_file=table["frame_id"] + ".jpg")


def test_duplicates_across_originals_but_not_augmented_copies():
    table = manifest([("a", "P1_F1.png", 5, 1), ("b", "P2_F7.png", 5, 1), ("c", "P3_F1.png", 9, 0),
                      ("d", "P3_F1.png", 9, 0), ("e", "P4_F1.png", 3, 0)])
    digests = {"a": "x", "b": "x", "c": "y", "d": "y", "e": "z"}
    [finding] = export_findings(table, digests, CLASSES, QcParams())
    assert (finding.kind, finding.action, finding.frame) == ("duplicate_frame", "warn", "")
    assert "a.jpg (P1_F1.png)" in finding.detail and "b.jpg (P2_F7.png)" in finding.detail
    assert export_findings(table, digests, CLASSES, QcParams(duplicate_frame="ignore")) == []


def test_class_without_examples():
    table = manifest([("a", "P1_F1.png", 5, 0), ("b", "P2_F1.png", 7, 0)])
    [finding] = export_findings(table, {"a": "x", "b": "y"}, CLASSES, QcParams())
    assert (finding.kind, finding.action) == ("class_without_examples", "error") and "lesion" in finding.detail


def test_pixel_digest_sees_pixels_and_shape():
    image = np.zeros((4, 6), np.uint8)
    assert pixel_digest(image) == pixel_digest(image.copy())
    assert pixel_digest(image) != pixel_digest(image.reshape(6, 4))
    assert pixel_digest(image) != pixel_digest(image + 1)


def test_report_round_trips_and_summary_counts(tmp_path: Path):
    findings = [Finding("outside_image", "error", "a.jpg", "ring 0"), Finding("tiny_polygon", "warn", "a.jpg", "r 1"),
                Finding("tiny_polygon", "warn", "b.jpg", "r 0"), Finding("duplicate_frame", "warn", "", "a, b")]
    path = tmp_path / "reports" / "qc.json"
    write_report(findings, path)
    assert read_report(path) == findings
    assert json.loads(path.read_text())["counts"] == {"outside_image": {"error": 1}, "tiny_polygon": {"warn": 2},
                                                      "duplicate_frame": {"warn": 1}}
    assert not list(path.parent.glob(".*partial"))
    lines = summarise(findings).splitlines()
    assert lines[0] == "qc: 4 finding(s): 1 error, 3 warn"
    assert lines[1].split()[:3] == ["error", "outside_image", "1"]
    assert any(line.split()[:3] == ["warn", "tiny_polygon", "2"] for line in lines)
    assert summarise([]) == "qc: no findings"


def test_summary_columns_line_up_for_the_longest_kind():
    findings = [Finding("annotation_without_image", "warn", "", "annotations[3]"), Finding("empty_mask", "warn", "a", "x")]
    lines = summarise(findings).splitlines()[1:]
    assert [line.split()[:3] for line in lines] == [["warn", "annotation_without_image", "1"], ["warn", "empty_mask", "1"]]
    assert len({line.index(" 1  e.g.") for line in lines}) == 1
