"""Writing stage outputs so that a failure never leaves half-written results."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yields a fresh temporary folder that replaces ``target`` only on success.

    On an exception the temporary folder is deleted and ``target`` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    partial.rename(target)


def write_text_atomically(path: Path, text: str) -> None:
    """Writes text via a temporary file and rename, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text)
    temporary.replace(path)


def write_csv_atomically(path: Path, table: pd.DataFrame) -> None:
    """Writes a data frame as CSV (no index, 4-decimal floats), atomically."""
    write_text_atomically(path, table.to_csv(index=False, float_format="%.4f"))


def write_json_atomically(path: Path, payload: Any) -> None:
    """Writes pretty, key-sorted JSON, atomically."""
    write_text_atomically(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
