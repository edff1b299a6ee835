"""Messages name settings as the running command knows them: ``trus ingest`` options, the pull stage's params keys."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli.ingest import OPTIONS, qc_params
from pipeline.cli.main import app
from pipeline.config import ParamsError, QcParams, named_by_options, setting
from pipeline.stages import pull
from tests.export_fixtures import coco_payload, square, write_coco_export
from tests.test_stages import small_params


@pytest.mark.parametrize("options, key, value, expected", [
    (None, "data.classes", None, "data.classes"),
    (None, "qc.outside_image", "warn", "qc.outside_image: warn"),
    (OPTIONS, "data.classes", None, "--classes"),
    (OPTIONS, "data.unannotated", "drop", "--unannotated drop"),
    (OPTIONS, "qc.outside_image", None, "--qc outside_image"),
    (OPTIONS, "qc.outside_image", "warn", "--qc outside_image=warn"),
    (OPTIONS, "data.roboflow.timeout_s", 5, "data.roboflow.timeout_s: 5 in params.yaml"),  # no option for it
])
def test_setting_names(options, key, value, expected):
    if options is None:
        assert setting(key, value) == expected
    else:
        with named_by_options(options):
            assert setting(key, value) == expected
        assert setting(key) == key  # the naming ends with the block


@pytest.mark.parametrize("assignments, expected", [
    ([], QcParams()),
    (["outside_image=warn", "unknown_patient = error"], QcParams(outside_image="warn", unknown_patient="error")),
    (["outside_image=error", "outside_image=ignore"], QcParams(outside_image="ignore")),  # the last one wins
    (["tiny_polygon_px=4.5"], QcParams(tiny_polygon_px=4.5)),
    (["outside_image"], "--qc 'outside_image': expected KIND=ACTION"),
    (["outsideimage=warn"], "--qc outsideimage: no such finding kind; known: annotation_without_image, "),
    (["outside_image=warning"], "--qc outside_image must be one of ignore, warn, error; got 'warning'"),
    (["tiny_polygon_px=big"], "--qc tiny_polygon_px must be a number (px^2), got 'big'"),
])
def test_qc_option(assignments: list[str], expected):
    with named_by_options(OPTIONS):
        if isinstance(expected, QcParams):
            assert qc_params(QcParams(), assignments) == expected
        else:
            with pytest.raises(ParamsError) as error:
                qc_params(QcParams(), assignments)
            assert str(error.value).startswith(expected)


def outside_polygon_export(root: Path) -> Path:
    """The tiny COCO export with the second frame's gland pushed 100 px right of the image."""
    payload = coco_payload(["P001_F01", "P002_F01"], [(0, 1, square(4, 4, 16)), (0, 2, square(8, 8, 6)),
                                                      (1, 1, square(104, 5, 14))])
    return write_coco_export(root, payload)


PARAMS_KEY = re.compile(r"\b(data\.(classes|format|unannotated|patient_pattern|frames_manifest)|qc\.[a-z_]+:)")
OPTION = re.compile(r"(^|\s)--[a-z]")
# (what to break, options, the message under `trus ingest`, the message under the pull stage)
CASES = [
    ("nine-classes", ["--classes", "a,b,c,d,e,f,g,h,i"],
     "--classes: at most 8 classes fit the mask files (one bit per class), got 9: a, b, c",
     "params.yaml: data.classes: at most 8 classes fit the mask files (one bit per class), got 9"),
    ("unknown-class", ["--classes", "gland,tumour"],
     "class(es) tumour not in the export; it has gland, lesion; choose --classes among them",
     "class(es) tumour not in the export; it has gland, lesion; choose data.classes among them"),
    ("no-format", ["--format", "auto"], "yolov8 (data.yaml)); name it with --format",
     "yolov8 (data.yaml)); name it with data.format"),
    ("bad-format", ["--format", "coco"], "--format must be one of auto, coco-segmentation, png-mask-semantic, "
     "yolov8; got 'coco'", "params.yaml: data.format must be one of auto, coco-segmentation"),
    ("bad-pattern", ["--patient-pattern", "(?P<patient>[A-Z"], "--patient-pattern is not a regular expression "
     "(unterminated character set", "params.yaml: data.patient_pattern is not a regular expression"),
    ("outside", [], "(set --qc outside_image=warn to go on)", "(set qc.outside_image: warn to go on)"),
    ("drop-all", ["--unannotated", "drop", "--classes", "gland"], "no usable frames: 2 frame(s) in the export, 2 without annotations left out by --unannotated drop, 0 not the size",
     "no usable frames: 2 frame(s) in the export, 2 without annotations left out by data.unannotated: drop, 0 not"),
]


def broken_project(root: Path, breakage: str) -> tuple[Path, dict]:
    """An export under ``root/data`` broken as ``breakage`` says, and the pull stage's data params for it."""
    data = {"export_dir": "data", "format": "auto", "classes": ["gland", "lesion"], "unannotated": "keep"}
    if breakage == "outside":
        outside_polygon_export(root / "data")
    elif breakage == "no-format":
        (root / "data" / "train").mkdir(parents=True)
        (root / "data" / "train" / "notes.txt").write_text("not an export")
    elif breakage == "drop-all":
        write_coco_export(root / "data", coco_payload(["P001_F01", "P002_F01"], []))
        data.update(unannotated="drop", classes=["gland"])
    else:
        write_coco_export(root / "data")
        data.update({"nine-classes": {"classes": list("abcdefghi")}, "unknown-class": {"classes": ["gland", "tumour"]},
                     "bad-format": {"format": "coco"}, "bad-pattern": {"patient_pattern": "(?P<patient>[A-Z"}}[breakage])
    return root / "data", data


@pytest.mark.parametrize("breakage, options, cli_message, stage_message", CASES, ids=[case[0] for case in CASES])
def test_trus_ingest_names_its_options(tmp_path: Path, monkeypatch, breakage: str, options: list[str],
                                       cli_message: str, stage_message: str):
    export, _ = broken_project(tmp_path, breakage)
    monkeypatch.chdir(tmp_path)  # no params.yaml here: the defaults, as for a user outside a project
    result = CliRunner().invoke(app, ["ingest", str(export), "--out", "checked", *options])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.stderr
    assert cli_message in errors[0] and not PARAMS_KEY.search(errors[0])
    assert not (tmp_path / "checked").exists()


@pytest.mark.parametrize("breakage, options, cli_message, stage_message", CASES, ids=[case[0] for case in CASES])
def test_pull_stage_names_params_keys(tmp_path: Path, monkeypatch, breakage: str, options: list[str],
                                      cli_message: str, stage_message: str):
    _, data = broken_project(tmp_path, breakage)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small_params(data=data)))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as error:
        pull.main()
    assert stage_message in str(error.value) and not OPTION.search(str(error.value))
    assert not (tmp_path / "artifacts" / "frames").exists()


def test_trus_ingest_qc_option_lets_a_finding_pass(tmp_path: Path, monkeypatch):
    export = outside_polygon_export(tmp_path / "export")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["ingest", str(export), "--out", "checked", "--qc", "outside_image=warn",
                                      "--patient-pattern", r"^(?P<patient>P\d+)_F"])
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "checked.qc.json").read_text())
    assert report["counts"] == {"outside_image": {"warn": 1}, "empty_mask": {"warn": 1}}
