"""The app's rotating log file: tracebacks of failures are kept, frame paths and names never written."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from app import log_file
from app.log_file import BACKUPS, LOG_DIR_VARIABLE, LOG_NAME, MAX_BYTES, REDACTED, configure_file_logging
from app.main_window import MainWindow
from app.settings import AppSettings
from tests.tiny_models import write_threshold_model

ROOT = Path(__file__).resolve().parents[1]
PATIENT_NAME = "Doe^John_19700101"  # what a scanner export may put in a file name


@pytest.fixture
def frame_named_after_a_patient(tmp_path: Path) -> Path:
    folder = tmp_path / PATIENT_NAME
    folder.mkdir()
    path = folder / f"{PATIENT_NAME}_IMG0001.png"
    gray = np.zeros((50, 80), np.uint8)
    gray[15:35, 25:55] = 255
    cv2.imwrite(str(path), gray)
    return path


@pytest.fixture
def in_process_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The app's file logging configured in this process, removed afterwards."""
    monkeypatch.setattr(log_file, "_current", [])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    path = configure_file_logging(tmp_path / "logs")
    yield path
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_trus_app", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)


def run_app(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", LOG_DIR_VARIABLE: str(tmp_path / "logs")}
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_run_is_logged_without_the_frame_path(tmp_path: Path, frame_named_after_a_patient: Path):
    model = write_threshold_model(tmp_path / "model.onnx")
    result = run_app(tmp_path, frame_named_after_a_patient, "--model", model, "--screenshot", tmp_path / "shot.png")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "logs" / LOG_NAME).read_text()
    for event in ("trus-app started", f"model loaded: {model}", "frame opened: 80x50 px, spacing from none"):
        assert event in text
    assert "Doe" not in text and "IMG0001" not in text


def test_a_bad_frame_is_logged_redacted(tmp_path: Path, frame_named_after_a_patient: Path):
    frame_named_after_a_patient.write_bytes(b"not an image")
    model = write_threshold_model(tmp_path / "model.onnx")
    result = run_app(tmp_path, frame_named_after_a_patient, "--model", model, "--screenshot", tmp_path / "shot.png")
    assert result.returncode == 2 and PATIENT_NAME in result.stderr  # the user sees which file
    text = (tmp_path / "logs" / LOG_NAME).read_text()
    assert f"ERROR app: {REDACTED}: not a readable image" in text and "Doe" not in text


def test_a_failure_in_the_worker_keeps_its_traceback(qtbot, tmp_path: Path, in_process_log: Path,
                                                     frame_named_after_a_patient: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text, *a: shown.append(text))
    window = MainWindow(settings=AppSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.load_model(write_threshold_model(tmp_path / "model.onnx"))

    def broken(gray: np.ndarray, region_box=None) -> None:
        raise RuntimeError(f"cannot segment {frame_named_after_a_patient}")

    monkeypatch.setattr(window.segmenter, "segment", broken)
    assert window.open_frame(frame_named_after_a_patient)
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)
    assert shown[0].endswith(f"Details are in the log: {in_process_log}")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = in_process_log.read_text()
    assert "ERROR app.worker: segmentation failed" in text and "Traceback (most recent call last)" in text
    assert f"RuntimeError: cannot segment {REDACTED}" in text and "Doe" not in text


def test_the_log_rotates_and_uncaught_exceptions_are_logged(in_process_log: Path):
    handlers = [h for h in logging.getLogger().handlers if getattr(h, "_trus_app", False)]
    assert len(handlers) == 1 and isinstance(handlers[0], RotatingFileHandler)
    assert (handlers[0].maxBytes, handlers[0].backupCount) == (MAX_BYTES, BACKUPS) == (1_000_000, 5)
    try:
        raise KeyError("a bug in a slot")
    except KeyError:
        log_file._log_uncaught(*sys.exc_info())
    handlers[0].flush()
    text = in_process_log.read_text()
    assert "CRITICAL app: uncaught exception" in text and "KeyError: 'a bug in a slot'" in text


def test_an_unwritable_log_folder_falls_back_to_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(log_file, "_current", [])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    try:
        configure_file_logging(blocker / "logs")
        assert "cannot write the log" in capsys.readouterr().err and log_file.current_log_file() is None
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_trus_app", False)]:
            root.removeHandler(handler)
        root.setLevel(logging.WARNING)
