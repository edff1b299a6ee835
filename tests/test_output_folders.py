"""No command deletes or overwrites what it did not create (pipeline/files/output_folder.py, atomic.py).

Every `trus` command that writes a folder is run through the real CLI against the same table
of situations: --out is, contains or lies inside its source; --out holds a user's file (with
and without --force); --out is an earlier output of the same or of another command.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.files.atomic import atomic_file, staged_folder, write_text_atomically
from pipeline.files.output_folder import MARKER, OutputFolderError, check_output_folder, output_folder
from pipeline.files.tables import read_table
from pipeline.synthetic import SampleSpec, write_sample_export
from tests.tiny_models import write_threshold_model

SECRET = "hospital-secret-0123456789"
TINY = SampleSpec(n_patients=2, frames_per_patient=1, frame_width=320, frame_height=240)


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file below ``folder``."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Sources for every command: an export, raw scans, frames and a model."""
    root = tmp_path_factory.mktemp("world")
    write_sample_export(root / "export", seed=2, spec=TINY)
    for patient in ("p1", "p2"):
        (root / "raw" / patient).mkdir(parents=True)
        cv2.imwrite(str(root / "raw" / patient / "still.png"), np.full((24, 32), 90 + len(patient), np.uint8))
    (root / "frames").mkdir()
    cv2.imwrite(str(root / "frames" / "a.png"), np.tile(np.arange(40, dtype=np.uint8) * 6, (30, 1)))
    write_threshold_model(root / "model.onnx")
    return root


# command -> (arguments before --out, given the world; the source folder the command reads)
COMMANDS: dict[str, tuple[Callable[[Path], list[str]], str | None]] = {
    "sample": (lambda w: ["sample", "--seed", "1", "--patients", "1", "--frames-per-patient", "1"], None),
    "ingest": (lambda w: ["ingest", str(w / "export"), "--classes", "gland,lesion"], "export"),
    "frames": (lambda w: ["frames", str(w / "raw")], "raw"),
    "segment": (lambda w: ["segment", str(w / "frames"), "--model", str(w / "model.onnx")], "frames"),
    "preprocess": (lambda w: ["preprocess", str(w / "frames")], "frames"),
}


def trus(args: list[str], cwd: Path, monkeypatch) -> object:
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, args, env={"TRUS_PSEUDONYM_KEY": SECRET, "COLUMNS": "300"})


def run(command: str, world: Path, out: Path, monkeypatch, *extra: str) -> object:
    arguments, _ = COMMANDS[command]
    return trus([*arguments(world), "--out", str(out), *extra], world.parent, monkeypatch)


def error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize("command", [c for c, (_, source) in COMMANDS.items() if source])
@pytest.mark.parametrize("where, overlap", [(".", "is"), ("inside", "lies inside"), ("..", "contains")])
def test_out_overlapping_the_source_is_refused_and_the_source_kept(command, where, overlap, world, monkeypatch):
    source = world / COMMANDS[command][1]
    out = {".": source, "inside": source / "inside", "..": world}[where]
    before = snapshot(world)
    for force in ((), ("--force",)):
        line = error_line(run(command, world, out, monkeypatch, *force))
        assert f"{overlap} the source" in line and str(out) in line
    assert snapshot(world) == before


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_users_folder_is_never_replaced_even_with_force(command, world, tmp_path, monkeypatch):
    out = tmp_path / "mine"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "diary.txt").write_text("my own notes")
    assert "not empty" in error_line(run(command, world, out, monkeypatch))
    line = error_line(run(command, world, out, monkeypatch, "--force"))
    assert "not an earlier output" in line
    assert snapshot(out) == {"notes/diary.txt": hashlib.sha256(b"my own notes").hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no staging folder left behind


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_earlier_output_is_replaced_only_with_force(command, world, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = run(command, world, out, monkeypatch)
    assert first.exit_code == 0, first.output
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == f"trus {command}"
    assert set(marker["files"]) == set(snapshot(out)) - {MARKER}
    earlier = snapshot(out)
    assert "--force" in error_line(run(command, world, out, monkeypatch))
    assert snapshot(out) == earlier
    again = run(command, world, out, monkeypatch, "--force")
    assert again.exit_code == 0, again.output
    assert set(snapshot(out)) == set(earlier)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", *(["out.qc.json"] if command == "ingest" else [])]
    (out / "added-by-me.txt").write_text("keep")
    line = error_line(run(command, world, out, monkeypatch, "--force"))
    assert "added-by-me.txt" in line and (out / "added-by-me.txt").read_text() == "keep"


def test_an_output_of_another_command_is_not_replaced(world, tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert run("preprocess", world, out, monkeypatch).exit_code == 0
    earlier = snapshot(out)
    line = error_line(run("segment", world, out, monkeypatch, "--force"))
    assert "an output of `trus preprocess`, not of `trus segment`" in line
    assert snapshot(out) == earlier


def test_a_failed_run_keeps_the_earlier_output(world, tmp_path, monkeypatch):
    out = tmp_path / "checked"
    assert run("ingest", world, out, monkeypatch).exit_code == 0
    earlier = snapshot(out)
    failed = trus(["ingest", str(world / "export"), "--classes", "gland,prostate", "--out", str(out), "--force"],
                  world.parent, monkeypatch)
    assert "prostate" in error_line(failed)
    assert snapshot(out) == earlier
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checked", "checked.qc.json"]


def test_ingest_report_file_follows_the_same_rule(world, tmp_path, monkeypatch):
    report = tmp_path / "report.json"
    report.write_text("the user's own file")
    args = ["ingest", str(world / "export"), "--classes", "gland,lesion", "--report", str(report)]
    for out, force in ((tmp_path / "a", ()), (tmp_path / "b", ("--force",))):
        line = error_line(trus([*args, "--out", str(out), *force], world.parent, monkeypatch))
        assert str(report) in line and not out.exists()
    assert report.read_text() == "the user's own file"
    report.unlink()
    assert trus([*args, "--out", str(tmp_path / "c")], world.parent, monkeypatch).exit_code == 0
    assert set(json.loads(report.read_text())) == {"counts", "findings"}
    assert trus([*args, "--out", str(tmp_path / "d"), "--force"], world.parent, monkeypatch).exit_code == 0


def test_pull_refuses_an_export_inside_its_output(tmp_path: Path):
    """The stage's outputs are the pipeline's own, but an export placed inside them would be deleted with them."""
    from pipeline.files.output_folder import refuse_overlap

    with pytest.raises(OutputFolderError, match="contains the source artifacts/frames/export"):
        refuse_overlap(Path("artifacts/frames"), [Path("artifacts/frames/export")])
    with pytest.raises(OutputFolderError, match="lies inside the source artifacts"):
        refuse_overlap(Path("artifacts/frames"), [Path("artifacts")])
    refuse_overlap(Path("artifacts/frames"), [Path("data")])


@pytest.mark.parametrize("content, allowed", [
    ({}, True),                                             # missing
    ({"empty/": None}, False),                              # only an empty sub-folder: still the user's
    ({MARKER: {"command": "trus x", "files": ["a"]}, "a": "1"}, True),
    ({MARKER: {"command": "trus x", "files": ["a"]}, "a": "1", "b": "2"}, False),
    ({MARKER: {"command": "trus y", "files": ["a"]}, "a": "1"}, False),
    ({MARKER: "not json{", "a": "1"}, False),
])
def test_check_output_folder_with_force(tmp_path: Path, content: dict, allowed: bool):
    out = tmp_path / "out"
    for name, value in content.items():
        path = out / name
        if value is None:
            path.mkdir(parents=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value if isinstance(value, str) else json.dumps(value))
    if allowed:
        check_output_folder(out, "trus x", force=True)
    else:
        with pytest.raises(OutputFolderError):
            check_output_folder(out, "trus x", force=True)


def test_output_folder_failure_leaves_nothing(tmp_path: Path):
    with pytest.raises(RuntimeError), output_folder(tmp_path / "out", "trus x") as staging:
        (staging / "half.png").write_bytes(b"half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_staged_folder_swaps_by_renames(tmp_path: Path):
    target = tmp_path / "target"
    with staged_folder(target) as staging:
        (staging / "v1").write_text("1")
    with pytest.raises(KeyError), staged_folder(target) as staging:
        (staging / "v2").write_text("2")
        raise KeyError("interrupted")
    assert snapshot(target) == {"v1": hashlib.sha256(b"1").hexdigest()}
    with staged_folder(target) as staging:
        (staging / "v2").write_text("2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"] and list(snapshot(target)) == ["v2"]


def test_atomic_file_keeps_the_old_file_on_failure(tmp_path: Path):
    path = tmp_path / "sub" / "model.bin"
    write_text_atomically(path, "old")
    with pytest.raises(ValueError), atomic_file(path) as temporary:
        temporary.write_text("half")
        raise ValueError("parity")
    assert path.read_text() == "old" and sorted(p.name for p in path.parent.iterdir()) == ["model.bin"]


def test_read_table_keeps_ids_as_written(tmp_path: Path):
    path = tmp_path / "manifest.csv"
    path.write_text("frame_id,patient,original_name,px_gland,spacing_x_mm,annotated\n"
                    "0001,007,0071.png,12,,True\n0002,NA,nan.png,0,0.25,False\n")
    table = read_table(path)
    assert table["frame_id"].tolist() == ["0001", "0002"] and table["patient"].tolist() == ["007", "NA"]
    assert table["original_name"].tolist() == ["0071.png", "nan.png"]
    assert table["px_gland"].tolist() == [12, 0] and pd.isna(table["spacing_x_mm"][0])
    assert table["spacing_x_mm"][1] == 0.25 and table["annotated"].tolist() == [True, False]


def test_messages_with_brackets_are_printed_as_they_are(world, tmp_path, monkeypatch):
    """Rich markup must never eat text: a file named like markup is named in full."""
    frame = tmp_path / "[red]scan[x1, y1].png"
    frame.write_bytes(b"not an image")
    result = trus(["preprocess", str(frame), "--out", str(tmp_path / "p")], world.parent, monkeypatch)
    assert f"{frame}: not a readable image" in error_line(result)
