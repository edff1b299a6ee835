"""Writing a file or a folder so that a failure never leaves it half-written.

Every write goes to a temporary name beside the target (a dot-name ending ``.partial``, so
the same file system and ignored by git) and is renamed onto the target only when it is
complete. This is the one temp-file-and-rename helper of the project: PNGs, CSV/JSON
tables, checkpoints and ONNX models all go through :func:`atomic_file`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PARTIAL_SUFFIX = ".partial"


def partial_name(path: Path) -> Path:
    """The temporary name a file is written under before it becomes ``path``: ``.<name>.partial`` beside it."""
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yields a temporary path to write; it replaces ``path`` only when the block succeeds.

    For writers that want a file name (``torch.save``, ``torch.onnx.export``). The folder is
    created. On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_name(path)
    try:
        yield temporary
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Writes bytes via a temporary file and rename, creating the folder."""
    with atomic_file(path) as temporary:
        temporary.write_bytes(data)


def write_text_atomically(path: Path, text: str) -> None:
    """Writes UTF-8 text via a temporary file and rename, creating the folder."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_csv_atomically(path: Path, table: pd.DataFrame) -> None:
    """Writes a data frame as CSV (no index, 4-decimal floats), atomically."""
    write_text_atomically(path, table.to_csv(index=False, float_format="%.4f"))


def write_json_atomically(path: Path, payload: Any) -> None:
    """Writes pretty, key-sorted JSON, atomically."""
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Yields a new, empty folder beside ``target`` that becomes ``target`` only when the block succeeds.

    An existing ``target`` is swapped out by renames (``target`` -> a temporary name, the new
    folder -> ``target``) and deleted only after the new folder is in place, so at every moment
    ``target`` is either the old folder or the complete new one. On an exception the new
    folder is deleted and ``target`` is left as it was. The caller decides whether ``target``
    may be replaced at all (see :mod:`pipeline.files.output_folder`).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = partial_name(target)
    shutil.rmtree(staging, ignore_errors=True)  # left by a run that was killed
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, target)


def replace_folder(complete: Path, target: Path) -> None:
    """Moves the folder ``complete`` onto ``target``, swapping out (then deleting) an existing ``target``."""
    if not target.exists() and not target.is_symlink():
        complete.rename(target)
        return
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)  # left by a run that was killed between the renames
    target.rename(old)
    try:
        complete.rename(target)
    except BaseException:
        old.rename(target)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    else:
        old.unlink()
