"""Shared fixtures and helpers. Qt runs offscreen; nothing here touches the network or a path outside the clone."""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
TEST_RUN_DIR = Path(tempfile.mkdtemp(prefix="trus-tests-"))
"""The test run's own folder for the app's settings and logs, never the user's; removed when the run ends."""
atexit.register(shutil.rmtree, TEST_RUN_DIR, ignore_errors=True)
APP_LOG_DIR = TEST_RUN_DIR / "app-logs"
"""``TRUS_APP_LOG_DIR`` for the app's processes that the tests start."""
# The app's persisted settings go to a file of the test run, never the user's own.
os.environ.setdefault("TRUS_APP_SETTINGS", str(TEST_RUN_DIR / "settings.ini"))

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DVC_CONFIG = Path(".dvc/config")  # the project's DVC settings, relative to a project folder
REAL_EXPORTS = Path("tests") / "fixtures" / "roboflow-real"
"""The real Roboflow exports, relative to the project root (see its PROVENANCE.md)."""
CHECKSUMS = "SHA256SUMS"

# Variables that change what a stage or the CLI does, or give it credentials: a test's child
# process must not inherit them from whoever runs the tests.
NOT_INHERITED = ("PYTHONPATH", "TRUS_DEBUG", "TRUS_VERBOSE", "TRUS_PSEUDONYM_KEY", "ROBOFLOW_API_KEY", "API_URL")


def child_environment(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: this one's (PATH, HOME, locale...) minus :data:`NOT_INHERITED`,
    plus ``overrides``."""
    environment = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    return {**environment, **(overrides or {})}


GIT_IDENTITY = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@example.org"}


def run_checked(command: list[str], cwd: Path, bin_dir: Path, timeout: int = 900,
                **env: str) -> subprocess.CompletedProcess:
    """Runs ``command`` in ``cwd`` with ``bin_dir`` (a venv's bin) first on PATH and a git identity;
    fails the test, showing the output's tail, on a non-zero exit."""
    environment = child_environment({"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **GIT_IDENTITY, **env})
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def stages_run(output: str) -> list[str]:
    """The stages a ``dvc repro`` output says it ran, in order (``train``; ``cv/dvc.yaml:train@0`` for another file's)."""
    return re.findall(r"Running stage '([^']+)'", output)


def project_files() -> list[str]:
    """The project as a fresh clone of this checkout would hold it, with its working-tree changes: the tracked
    files that exist, plus untracked (not ignored) code under ``pipeline/`` and ``app/``."""
    def git(*args: str) -> list[str]:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
                              timeout=60).stdout.splitlines()

    names = git("ls-files") + git("ls-files", "--others", "--exclude-standard", "--", "pipeline", "app")
    return sorted({name for name in names if (PROJECT_ROOT / name).is_file()})


def copy_project(root: Path) -> Path:
    """Copies :func:`project_files` into ``root`` (created); returns ``root``."""
    for name in project_files():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, target)
    return root


DIGIT_PATIENTS = ["000", "001", "007", "010", "042", "100"]
"""The small export's patients: P001..P006 of the synthetic sample, in order, named as a scanner names them."""


def write_digit_named_export(root: Path) -> None:
    """A 12-frame COCO export in ``root``: the synthetic sample (seed 3, 6 patients x 2 frames of 320x240) with each
    image renamed to its scanner name ``<patient><frame>.jpg`` (``0071.jpg``: patient ``007``, frame 1)."""
    from pipeline.synthetic import SampleSpec, write_sample_export

    source = root.with_name("sample")
    spec = SampleSpec(n_patients=len(DIGIT_PATIENTS), frames_per_patient=2, frame_width=320, frame_height=240)
    write_sample_export(source, seed=3, spec=spec)
    shutil.copytree(source, root)
    for annotation_file in root.glob("*/_annotations.coco.json"):
        payload = json.loads(annotation_file.read_text())
        for image in payload["images"]:
            patient, frame = re.match(r"P(\d{3})_F(\d{2})_[a-z]+_png\.rf\.", image["file_name"]).groups()
            name = f"{DIGIT_PATIENTS[int(patient) - 1]}{int(frame)}.jpg"
            (annotation_file.parent / image["file_name"]).rename(annotation_file.parent / name)
            image["file_name"] = name
        annotation_file.write_text(json.dumps(payload))


def fast_params() -> dict:
    """The project's params.yaml shrunk to seconds (64 px, ResNet-18 from scratch, 1 epoch, 2 folds), with a
    patient pattern for the digit names of :func:`write_digit_named_export`."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["data"]["patient_pattern"] = r"^(?P<patient>\d{3})"
    params["preprocess"].update(size=64, filter={**params["preprocess"]["filter"], "method": "isotropic"})
    params["split"].update(fractions=[0.5, 0.25, 0.25], folds=2)
    params["model"].update(encoder="resnet18", encoder_weights=None)
    params["train"].update(epochs=1, batch_size=4)
    params["evaluate"]["overlays"] = 2
    params["ood"].update(variants=["default", "probe_bottom"], patients=1, frames_per_patient=2)
    params["cv"]["folds"] = [0, 1]
    return params


def small_dvc_project(root: Path, bin_dir: Path, params: dict) -> Path:
    """A copy of the project (:func:`copy_project`) in a new git repository at ``root``: the export of
    :func:`write_digit_named_export` in ``data/`` (``dvc add``), ``params`` as params.yaml, all in one commit.
    Commands run with ``bin_dir`` first on PATH (:func:`run_checked`). Returns ``root``."""
    copy_project(root)
    write_digit_named_export(root / "data")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["dvc", "add", "-q", "data"], ["git", "add", "-A"],
                    ["git", "commit", "-qm", "project with a small export"]):
        run_checked(command, root, bin_dir)
    return root


def missing_real_export_files(root: Path) -> list[str]:
    """The files listed in ``root/SHA256SUMS`` that are absent or differ, as ``'<path>: <problem>'``."""
    checksums = root / CHECKSUMS
    if not checksums.is_file():
        return [f"{checksums}: missing"]
    problems = []
    for line in checksums.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        path = root / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{path}: differs from its SHA-256 in {CHECKSUMS} (a Git LFS pointer or an edit?)")
    return problems


@pytest.fixture(scope="session")
def real_exports() -> Path:
    """The real Roboflow exports committed in ``tests/fixtures/roboflow-real``; the test fails when a file is
    missing or altered."""
    root = PROJECT_ROOT / REAL_EXPORTS
    problems = missing_real_export_files(root)
    if problems:
        pytest.fail(f"the real-export fixtures of {REAL_EXPORTS} are incomplete ({len(problems)} problem(s)); "
                    f"they are committed with the project, restore them with `git checkout -- {REAL_EXPORTS}`:\n"
                    + "\n".join(problems), pytrace=False)
    return root


@pytest.fixture(scope="session", autouse=True)
def onnxruntime_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """ONNX Runtime's optimised graphs go to a folder of this test session, never the user's cache folder (the
    app and ``trus`` cache them; child processes inherit the variable)."""
    from pipeline.inference.session_cache import CACHE_ENV

    folder = tmp_path_factory.mktemp("onnxruntime-cache")
    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    yield folder
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(autouse=True)
def no_unexpected_modal_dialogs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A modal dialog that a test did not answer would wait for a click forever: fail at once instead.

    A test that expects a dialog replaces the static call with its own answer (``monkeypatch.setattr``), which
    overrides this one.
    """
    try:
        from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox
    except ImportError:  # the app's tests are the only ones that need Qt
        return

    def unexpected(name: str):
        def refuse(*args, **kwargs):
            texts = [str(arg) for arg in args[1:4] if isinstance(arg, str)]
            raise AssertionError(f"unexpected modal dialog {name}: {' | '.join(texts)}")
        return refuse

    for owner, names in ((QMessageBox, ("question", "warning", "information", "critical")),
                         (QInputDialog, ("getText", "getDouble", "getInt", "getItem")),
                         (QFileDialog, ("getOpenFileName", "getSaveFileName", "getExistingDirectory"))):
        for name in names:
            monkeypatch.setattr(owner, name, unexpected(f"{owner.__name__}.{name}"))


pytest_plugins = ["tests.app_fixtures"]  # the app's window, model and error-dialog fixtures
