"""Reading torch files (checkpoints, encoder weights) with one-line errors naming the file."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

# What torch.load and load_state_dict raise on missing, truncated, foreign or mismatched files.
LOAD_ERRORS: tuple[type[Exception], ...] = (OSError, EOFError, RuntimeError, ValueError, TypeError,
                                            AttributeError, KeyError, pickle.UnpicklingError)


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type name when the message is empty."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def load_torch_file(path: Path, error_type: type[Exception], what: str) -> Any:
    """``torch.load`` on the CPU with ``weights_only=True`` (no arbitrary code from pickles).

    Args:
        path: the file to read.
        error_type: the exception to raise on failure (a ValueError/OSError subclass).
        what: what the file should be, for the message, e.g. ``"training checkpoint"``.

    Raises:
        error_type: the file is missing or not a readable torch file; the message names it.
    """
    if not path.is_file():
        raise error_type(f"{path}: no such {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as error:
        raise error_type(f"{path}: not a readable {what} ({first_line(error)})") from error
