"""Running a stage: one-line errors, a non-zero exit, the traceback only when asked for.

Errors the user can fix (bad params, bad input files, missing upstream outputs) are
ValueError/OSError subclasses carrying a message that names the file and the problem; the
stage prints ``error: <message>`` and exits 1. ``python -m pipeline.stages.<stage> --verbose``
(or ``TRUS_VERBOSE=1``, e.g. for ``dvc repro``) logs the traceback too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from pipeline.logs import VERBOSE_VARIABLE, configure_console_logging

EXIT_USER_ERROR = 1
log = logging.getLogger("pipeline.stages")


def run_stage(main: Callable[[], object]) -> None:
    """Calls ``main()``; on a user-fixable error prints ``error: <message>`` and exits 1."""
    configure_console_logging("--verbose" in sys.argv[1:] or os.environ.get(VERBOSE_VARIABLE) == "1")
    try:
        main()
    except (ValueError, OSError) as error:
        log.debug("the stage failed", exc_info=True)
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


def require_file(path: os.PathLike[str] | str, produced_by: str) -> None:
    """Raises FileNotFoundError naming ``path`` and the stage that makes it, if it is missing."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: missing; it is written by the '{produced_by}' stage (run `dvc repro`)")
