"""Output folders named by the user (``--out``): never delete or overwrite what the command did not write.

The rules, for every command that writes a folder (``trus sample``, ``ingest``, ``frames``,
``segment``, ``preprocess``):

- ``--out`` that is, contains or lies inside one of the command's sources is refused, always.
- A non-empty ``--out`` is refused unless ``--force`` is given; and even then it is replaced
  only when it is a complete earlier output of the *same* command: it holds the marker file
  :data:`MARKER` that the command wrote, and no file the marker does not list (a file the user
  added is never deleted).
- The new output is written into a staging folder beside ``--out`` and renamed into place
  only when it is complete (:func:`pipeline.files.atomic.staged_folder`), so a failure leaves
  the earlier output, or nothing, never half of each.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipeline.files.atomic import staged_folder, write_json_atomically

MARKER = ".trus-output.json"
SHOWN = 3


class OutputFolderError(ValueError):
    """An output folder may not be written; the message names it and says why."""


def _files_below(folder: Path) -> list[str]:
    """Relative POSIX paths of every file and symlink below ``folder``, sorted."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink())


def _name_some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _overlap(out: Path, source: Path) -> str | None:
    """How ``out`` overlaps ``source`` (``is``, ``contains``, ``lies inside``), or None."""
    out, source = out.resolve(), source.resolve()
    if out == source:
        return "is"
    if source.is_relative_to(out):
        return "contains"
    if out.is_relative_to(source):
        return "lies inside"
    return None


def refuse_overlap(out: Path, sources: Sequence[Path]) -> None:
    """Raises when the output ``out`` is, contains or lies inside one of ``sources`` (files or folders).

    Raises:
        OutputFolderError: naming ``out``, the source and how they overlap.
    """
    for source in sources:
        overlap = _overlap(Path(out), Path(source))
        if overlap is not None:
            raise OutputFolderError(f"{out}: the output {'folder ' if overlap != 'is' else ''}{overlap} the source "
                                    f"{source}; choose an output outside it")


def check_output_folder(out: Path, command: str, sources: Sequence[Path] = (), force: bool = False) -> None:
    """Raises unless ``command`` may write its output to the folder ``out``.

    Args:
        out: the folder the user named.
        command: the command, e.g. ``trus ingest``; recorded in and compared with the marker.
        sources: files and folders the command reads; ``out`` must not be, contain or lie inside any.
        force: replace an earlier output of the same command.

    Raises:
        OutputFolderError: the rules of this module forbid it; the message says which and how to proceed.
    """
    out = Path(out)
    refuse_overlap(out, sources)
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise OutputFolderError(f"{out}: exists and is not a folder; choose a new output folder")
    present = _files_below(out)
    if not present and not any(out.iterdir()):
        return
    if not force:
        raise OutputFolderError(f"{out}: the output folder is not empty; choose a new one, or add --force to "
                                f"replace an earlier output of `{command}`")
    written = _marker_files(out, command)
    foreign = [name for name in present if name not in written and name != MARKER]
    if foreign:
        raise OutputFolderError(f"{out}: holds file(s) that `{command}` did not write ({_name_some(foreign)}); "
                                "refusing to replace it, even with --force; choose a new output folder")


def _marker_files(out: Path, command: str) -> set[str]:
    """The files an earlier output of ``command`` in ``out`` recorded in its marker.

    Raises:
        OutputFolderError: no readable marker of ``command``.
    """
    try:
        marker = json.loads((out / MARKER).read_text())
        files, owner = marker["files"], marker["command"]
    except (OSError, ValueError, KeyError, TypeError):
        raise OutputFolderError(f"{out}: not empty and not an earlier output of `{command}` (no {MARKER}); "
                                "refusing to replace it, even with --force; choose a new output folder") from None
    if owner != command or not isinstance(files, list):
        raise OutputFolderError(f"{out}: an output of `{owner}`, not of `{command}`; refusing to replace it; "
                                "choose a new output folder")
    return {str(name) for name in files}


@contextmanager
def output_folder(out: Path, command: str, sources: Sequence[Path] = (), force: bool = False) -> Iterator[Path]:
    """Yields an empty staging folder that becomes ``out`` when the block succeeds.

    Checks the rules first (:func:`check_output_folder`), and again just before the swap, in
    case files appeared meanwhile. On success the folder holds :data:`MARKER`, listing the
    files written, so a later ``--force`` run of the same command may replace it.

    Raises:
        OutputFolderError: the rules forbid writing ``out``.
    """
    out = Path(out)
    check_output_folder(out, command, sources, force)
    with staged_folder(out) as staging:
        yield staging
        write_json_atomically(staging / MARKER, {"command": command, "files": _files_below(staging)})
        check_output_folder(out, command, sources, force)

