"""What every ``trus`` command shares: the error console, one-line errors, ``--force``, ``--precision``, frame inputs.

A command's user-fixable errors (ValueError/OSError subclasses whose message names the file
and the problem) print one line, ``error: <message>``, and exit with status 2; ``trus
--verbose`` logs the traceback as well (see :mod:`pipeline.logs`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.imaging.frames import FRAME_SUFFIXES, FrameReadError
from pipeline.inference.runtime import PRECISIONS

if TYPE_CHECKING:
    from pipeline.inference.predictor import Segmenter

console = Console(stderr=True)
EXIT_BAD_INPUT = 2
log = logging.getLogger("pipeline.cli")

Force = Annotated[bool, typer.Option("--force", help="Replace an earlier output of this same command in OUT "
                                     "(never a folder holding files it did not write).")]
PrecisionChoice = Enum("PrecisionChoice", {name: name for name in PRECISIONS}, type=str)  # type: ignore[misc]
"""The ``--precision`` values, :data:`pipeline.inference.runtime.PRECISIONS` (typer takes choices as an Enum)."""
Precision = Annotated[PrecisionChoice, typer.Option(
    "--precision", help="Which model runs: auto (the INT8 model beside MODEL where this CPU runs it fast and exactly: "
                         "VNNI, or AVX2 with 7-bit weights), int8 or fp32.")]


def load_segmenter(model: Path, precision: str | Enum, threads: int | None = None,
                   spinning: bool = True) -> Segmenter:
    """The runtime of ``model`` at ``precision``, with ONNX Runtime's optimised-graph cache; logs which file runs.

    ``threads``: ONNX Runtime's intra-op threads (None: the physical cores); ``spinning``: whether they spin
    between operators (:func:`pipeline.inference.predictor.session_options`).

    Raises:
        ModelLoadError: see :class:`pipeline.inference.predictor.Segmenter`.
    """
    from pipeline.inference.predictor import Segmenter  # ONNX Runtime is loaded by the commands that run a model
    from pipeline.inference.session_cache import default_cache_dir

    value = precision.value if isinstance(precision, Enum) else precision
    segmenter = Segmenter(model, threads=threads, precision=value, cache_dir=default_cache_dir(),
                          spinning=spinning)
    log.info("model: %s (%s)", segmenter.path, segmenter.choice.reason)
    return segmenter


LABEL_COLOURS = {"error": "red", "warning": "yellow", "skipped": "yellow"}


def say(message: str, label: str | None = None) -> None:
    """Prints ``[label: ]message`` to stderr; the message is plain text (brackets in it are never markup).

    Args:
        message: what to say, e.g. an error naming a file.
        label: ``error``, ``warning`` or ``skipped`` (coloured on a terminal), or None.
    """
    prefix = f"[{LABEL_COLOURS[label]}]{label}:[/{LABEL_COLOURS[label]}] " if label else ""
    console.print(prefix + escape(message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Prints ``error: message`` to stderr and returns the Exit to raise; the traceback goes to the debug log."""
    log.debug("the command failed", exc_info=True)
    say(message, "error")
    return typer.Exit(code)


EXTRAS = {"pandas": "ingest", "roboflow": "ingest", "requests": "ingest", "PySide6": "app", "fastapi": "serve",
          "uvicorn": "serve", "multipart": "serve", "python_multipart": "serve"}
"""Optional packages -> the pyproject extra that installs them."""


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turns ValueError/OSError (ParamsError, FrameReadError, IngestError, ...) into :func:`fail`.

    A missing optional package (the clinician's ``[app]`` install has no pandas) becomes one
    line naming the extra to install.
    """
    try:
        yield
    except ModuleNotFoundError as error:
        package = (error.name or "").partition(".")[0]
        if package not in EXTRAS:
            raise
        raise fail(f"this command needs {package}, which this install lacks; install the "
                   f"'{EXTRAS[package]}' extra: pip install 'trus-seg[{EXTRAS[package]}]' "
                   f"(or pip install '.[{EXTRAS[package]}]' in the project)") from None
    except (ValueError, OSError) as error:
        raise fail(str(error)) from None


def check_spacing_options(spacing_mm: float | None, tick_mm: float) -> None:
    """Raises ValueError naming the option unless ``--spacing-mm`` (when given) and ``--tick-mm`` are finite and > 0."""
    for option, value in (("--spacing-mm", spacing_mm), ("--tick-mm", tick_mm)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{option} must be a finite number > 0, got {value}")


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files as given, plus the frame files directly inside given folders (sorted).

    Raises:
        FrameReadError: a path that does not exist, or a folder without frames.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
            if not found:
                raise FrameReadError(f"{path}: no frame files ({', '.join(FRAME_SUFFIXES)})")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise FrameReadError(f"{path}: no such file or folder")
    return files


def unique_stems(files: list[Path]) -> Iterator[tuple[Path, str]]:
    """Pairs each file with an output stem, suffixing ``_2``, ``_3``... on repeated names."""
    seen: dict[str, int] = {}
    for path in files:
        count = seen.get(path.stem, 0) + 1
        seen[path.stem] = count
        yield path, path.stem if count == 1 else f"{path.stem}_{count}"
