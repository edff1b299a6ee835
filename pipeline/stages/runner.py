"""Running a stage or command: one-line errors, non-zero exit, no traceback.

Errors the user can fix (bad params, bad input files, missing upstream outputs) are
ValueError/OSError subclasses carrying a message that names the file and the problem.
Set ``TRUS_DEBUG=1`` to see the traceback as well.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

EXIT_USER_ERROR = 1


def run_stage(main: Callable[[], object]) -> None:
    """Calls ``main()``; on a user-fixable error prints ``error: <message>`` and exits 1."""
    try:
        main()
    except (ValueError, OSError) as error:
        if os.environ.get("TRUS_DEBUG"):
            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


def require_file(path: os.PathLike[str] | str, produced_by: str) -> None:
    """Raises FileNotFoundError naming ``path`` and the stage that makes it, if it is missing."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: missing; it is written by the '{produced_by}' stage (run `dvc repro`)")
