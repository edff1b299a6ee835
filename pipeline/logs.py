"""Logging for the command line and the stages: warnings on stderr, tracebacks with ``--verbose``.

Library code logs with ``logging.getLogger(__name__)``; this module only decides where the
records go. The desktop app logs to a rotating file instead (``app/log_file.py``).
"""

from __future__ import annotations

import logging
import sys

VERBOSE_VARIABLE = "TRUS_VERBOSE"
"""Set to 1 to get ``--verbose`` behaviour where no option can be passed (stages run by ``dvc repro``)."""


class _LevelPrefix(logging.Formatter):
    """``warning: message``, and the traceback below it when the record carries one."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


def configure_console_logging(verbose: bool) -> None:
    """Sends log records to stderr: warnings and errors, or everything (tracebacks included) when ``verbose``.

    Replaces any handler an earlier call installed, so calling it twice is harmless.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_trus_console", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelPrefix("%(message)s"))
    handler._trus_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for noisy in ("PIL", "matplotlib", "urllib3", "asyncio"):  # third-party debug chatter
        logging.getLogger(noisy).setLevel(logging.INFO)
