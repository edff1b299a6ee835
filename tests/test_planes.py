"""A frame's plane from the data: Roboflow tags, the frames manifest, the file name, in that order;
and the evaluation's per-plane report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DataParams, ParamsError, QcParams
from pipeline.ingest.coco_json import MalformedJson, parse_image
from pipeline.ingest.frames_manifest import read_frames_manifest
from pipeline.ingest.normalise import normalise_export
from pipeline.planes import normalise_plane, plane_from_name, plane_from_tags, resolve_plane
from pipeline.ingest.records import IngestError
from pipeline.evaluation.scoring import by_plane, plane_column
from pipeline.synthetic import SampleSpec, plane_in_name, write_sample_export

DEFAULT_PATTERN = DataParams().plane_pattern


@pytest.mark.parametrize(("value", "plane"), [
    ("transverse", "transverse"), ("Transverse ", "transverse"), ("TRANS", "transverse"), ("axial", "transverse"),
    ("tra", "transverse"), ("sagittal", "sagittal"), ("SAG", "sagittal"), ("coronal", None), ("", None),
    (None, None), (float("nan"), None), (3, None),
])
def test_plane_names_and_synonyms(value, plane):
    assert normalise_plane(value) == plane


@pytest.mark.parametrize(("name", "plane"), [
    ("P007_F03_transverse.png", "transverse"),
    ("P007_F04_sagittal.png", "sagittal"),
    ("scan-SAG-01.png", "sagittal"),
    ("case 12 axial.dcm", "transverse"),
    ("P1_trans_2.png", "transverse"),
    ("P007_F03.png", None),          # says nothing
    ("P1_transversal.png", None),    # not a whole word
    ("massage.png", None),           # 'sag' inside a word
    ("sagittal", "sagittal"),
])
def test_the_default_pattern_finds_whole_words_in_the_file_name(name, plane):
    assert plane_from_name(name, DEFAULT_PATTERN) == plane


def test_no_pattern_means_no_plane_from_the_name():
    assert plane_from_name("P007_F03_transverse.png", None) is None


@pytest.mark.parametrize(("tags", "plane"), [
    (["transverse"], "transverse"), (["good", "Sagittal"], "sagittal"), (["reviewed"], None), ([], None),
    (["transverse", "sagittal"], None),  # contradictory: not used
    (["trans", "transverse"], "transverse"),
])
def test_plane_from_tags(tags, plane):
    assert plane_from_tags(tags, "x.png") == plane


@pytest.mark.parametrize(("tags", "listed", "name", "expected"), [
    (["sagittal"], "transverse", "P1_transverse.png", ("sagittal", "roboflow_tag")),
    ([], "transverse", "P1_sagittal.png", ("transverse", "frames_manifest")),
    ([], float("nan"), "P1_sagittal.png", ("sagittal", "file_name")),
    ([], "", "P1_sagittal.png", ("sagittal", "file_name")),
    (["transverse", "sagittal"], None, "P1_sagittal.png", ("sagittal", "file_name")),
    ([], None, "P1.png", ("", "")),
])
def test_the_order_is_tag_then_manifest_then_name(tags, listed, name, expected):
    assert resolve_plane(tags, listed, name, DEFAULT_PATTERN) == expected


@pytest.mark.parametrize(("pattern", "message"), [
    ("(?P<plane>", "not a regular expression"),
    ("_(trans|sag)_", r"needs a named group \(\?P<plane>"),
])
def test_a_bad_plane_pattern_stops_with_the_key(pattern, message):
    with pytest.raises(ParamsError, match=f"data.plane_pattern.*{message}"):
        DataParams(plane_pattern=pattern)


@pytest.mark.parametrize(("image", "tags"), [
    ({}, ()),
    ({"extra": {"name": "a.png"}}, ()),
    ({"extra": {"user_tags": ["transverse", "reviewed"]}}, ("transverse", "reviewed")),
])
def test_coco_images_carry_their_roboflow_tags(image, tags):
    parsed = parse_image({"id": 1, "file_name": "a.jpg", "width": 4, "height": 3, **image}, 0)
    assert parsed.tags == tags


@pytest.mark.parametrize(("extra", "where"), [
    ({"user_tags": "transverse"}, r"images\[0\]\.extra\.user_tags"),
    ({"user_tags": [7]}, r"images\[0\]\.extra\.user_tags\[0\]"),
    ("transverse", r"images\[0\]\.extra"),
])
def test_malformed_tags_name_the_json_path(extra, where):
    with pytest.raises(MalformedJson, match=where):
        parse_image({"id": 1, "file_name": "a.jpg", "width": 4, "height": 3, "extra": extra}, 0)


def _frames_manifest(path: Path, planes: list[str]) -> Path:
    pd.DataFrame({"original_name": [f"P00{k}_F01.png" for k in range(len(planes))],
                  "patient": [f"P00{k}" for k in range(len(planes))], "spacing_x_mm": 0.2, "spacing_y_mm": 0.2,
                  "plane": planes}).to_csv(path, index=False)
    return path


def test_the_frames_manifest_plane_column_is_read_and_normalised(tmp_path: Path):
    table = read_frames_manifest(_frames_manifest(tmp_path / "m.csv", ["Transverse", "sag", ""]))
    assert table["plane"].tolist() == ["transverse", "sagittal", ""]


def test_an_unknown_plane_in_the_frames_manifest_names_the_file(tmp_path: Path):
    path = _frames_manifest(tmp_path / "m.csv", ["transverse", "coronal"])
    with pytest.raises(IngestError, match=r"m\.csv: plane must be empty, transverse or sagittal, got 'coronal'"):
        read_frames_manifest(path)


@pytest.fixture(scope="module")
def tagged_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small sample export whose first transverse train image is tagged ``sagittal`` in Roboflow's way."""
    root = tmp_path_factory.mktemp("tagged") / "export"
    write_sample_export(root, seed=3, spec=SampleSpec(n_patients=2, frames_per_patient=3, frame_width=320,
                                                     frame_height=240))
    coco_file = root / "train" / "_annotations.coco.json"
    coco = json.loads(coco_file.read_text())
    first = next(image for image in coco["images"] if "_transverse_" in image["file_name"])
    first["extra"] = {"name": "x", "user_tags": ["sagittal", "checked"]}
    coco_file.write_text(json.dumps(coco))
    return root


def test_pull_writes_each_frame_s_plane_and_its_source(tagged_export: Path, tmp_path: Path):
    images = json.loads((tagged_export / "train" / "_annotations.coco.json").read_text())["images"]
    tagged = next(image["file_name"] for image in images if image.get("extra"))
    out = tmp_path / "frames"
    out.mkdir()
    manifest = normalise_export(tagged_export, out, DataParams(), QcParams(), progress=False).manifest
    row = manifest.set_index("export_file").loc[tagged]
    # the tag wins over the file name, which says transverse
    assert "_transverse_" in tagged and (row["plane"], row["plane_source"]) == ("sagittal", "roboflow_tag")
    others = manifest[manifest["export_file"] != tagged]
    # the sample's names carry the plane (P001_F02_sagittal.png), and there is no frames manifest
    assert set(others["plane_source"]) == {"file_name"}
    assert others["plane"].tolist() == [plane_in_name(name) for name in others["original_name"]]
    assert set(others["plane"]) == {"transverse", "sagittal"}
    assert {"plane", "plane_source"} <= set(pd.read_csv(out / "manifest.csv").columns)


def test_evaluation_reports_each_plane_apart():
    per_frame = pd.DataFrame({
        "frame_id": ["a", "a", "b", "b", "c", "c"], "patient": "P1",
        "class": ["gland", "lesion"] * 3,
        "dice": [170 / 190, np.nan, 0.5, 0.0, 120 / 170, np.nan], "iou": [0.8, np.nan, 0.4, 0.0, 0.6, np.nan],
        "hd95_px": [2.0, np.nan, 4.0, np.nan, 3.0, np.nan], "hd95_mm": np.nan,
        "assd_px": [1.0, np.nan, 2.0, np.nan, 1.5, np.nan], "assd_mm": np.nan,
        "truth_px": [100, 0, 100, 10, 100, 0], "predicted_px": [90, 0, 80, 0, 70, 0],
        "intersection_px": [85, 0, 45, 0, 60, 0]})
    table = pd.DataFrame({"plane": ["transverse", "sagittal", np.nan]}, index=["a", "b", "c"])
    per_frame["plane"] = plane_column(per_frame["frame_id"], table)
    report = by_plane(per_frame, ("gland", "lesion"))
    assert list(report) == ["transverse", "sagittal", "unknown"]
    assert report["transverse"]["frames"] == 1 and report["transverse"]["gland"]["dice"] == pytest.approx(170 / 190)
    assert report["transverse"]["lesion"]["frames_scored"] == 0
    assert report["sagittal"]["gland"]["dice"] == pytest.approx(0.5)
    assert report["sagittal"]["lesion"]["missed_frames"] == 1 and report["sagittal"]["lesion"]["dice"] == 0.0
    assert report["sagittal"]["score"] == pytest.approx(0.25)
    assert report["unknown"]["gland"]["dice"] == pytest.approx(120 / 170)


def test_a_manifest_from_before_planes_reports_every_frame_as_unknown():
    assert plane_column(pd.Series(["a", "b"]), pd.DataFrame(index=["a", "b"])).tolist() == ["unknown", "unknown"]
