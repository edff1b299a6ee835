"""The app's log: a rotating file in the platform's user log folder, so a failure in the field keeps its traceback.

The folder is ``platformdirs.user_log_path("trus-app")`` (Linux ``~/.local/state/trus-app/log``,
Windows ``%LOCALAPPDATA%\\trus-app\\Logs``, macOS ``~/Library/Logs/trus-app``), or
``$TRUS_APP_LOG_DIR`` when set. Uncaught exceptions (in Qt slots or threads) are logged with
their traceback. Patient identifiers never reach the file: the app logs no frame path or DICOM
tag itself, and :class:`RedactFrames` replaces the path and name of every frame the user
opened wherever a message (an error text) would carry them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_DIR_VARIABLE = "TRUS_APP_LOG_DIR"
LOG_NAME = "trus-app.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
REDACTED = "<frame>"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("app")


def log_folder() -> Path:
    """Where the app writes its log: ``$TRUS_APP_LOG_DIR``, else the platform's user log folder."""
    override = os.environ.get(LOG_DIR_VARIABLE)
    if override:
        return Path(override)
    from platformdirs import user_log_path

    return user_log_path("trus-app", appauthor=False)


class RedactFrames(logging.Filter):
    """Replaces the paths and file names of opened frames (which may name a patient) by ``<frame>``."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, path: Path) -> None:
        """Redacts ``path`` (as given and resolved) and its file name from now on."""
        for text in (str(path), str(Path(path).resolve()), Path(path).name):
            if len(text) >= 3:
                self._secrets.add(text)

    def redact(self, text: str) -> str:
        """``text`` with every known frame path or name replaced, longest first."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


REDACT = RedactFrames()
_current: list[Path] = []


def current_log_file() -> Path | None:
    """The file :func:`configure_file_logging` set up in this process, or None."""
    return _current[-1] if _current else None


def configure_file_logging(folder: Path | None = None) -> Path:
    """Logs INFO and above to a rotating file (1 MB x 5 backups) and logs uncaught exceptions.

    Returns:
        The log file. If it cannot be created (read-only home), logging goes to stderr
        instead and the intended path is returned.
    """
    path = (folder or log_folder()) / LOG_NAME
    root = logging.getLogger()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError as error:
        handler = logging.StreamHandler(sys.stderr)
        print(f"trus-app: warning: cannot write the log {path} ({error}); logging to stderr", file=sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(REDACT)
    for earlier in [h for h in root.handlers if getattr(h, "_trus_app", False)]:
        root.removeHandler(earlier)
        earlier.close()
    handler._trus_app = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    if isinstance(handler, RotatingFileHandler):
        _current.append(path)
    root.setLevel(logging.INFO)
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)
    return path


def _log_uncaught(kind, value, traceback) -> None:  # noqa: ANN001 - sys.excepthook's signature
    log.critical("uncaught exception", exc_info=(kind, value, traceback))
    sys.__excepthook__(kind, value, traceback)
