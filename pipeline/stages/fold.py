"""The ``--fold K`` option of the train and evaluate stages: one cross-validation fold (``cv/dvc.yaml``).

Without the option a stage works on the split's train/val/test subsets and writes the
deployed model's files; with ``--fold K`` it works on fold K of ``artifacts/split.json``
(validation on its part of the train+val patients, training on the others) and writes
under ``models/folds/K``, ``dvclive/folds/K`` and ``reports/folds/K`` (``pipeline.layout``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipeline.layout import SPLIT_FILE

OPTION = "--fold"


def fold_option(argv: Sequence[str]) -> int | None:
    """Fold K of ``--fold K`` or ``--fold=K`` among a stage's arguments, or None without it.

    Args:
        argv: the arguments after the program name; others (``--verbose``) are left alone.

    Raises:
        ValueError: ``--fold`` without a number >= 0, or given twice.
    """
    values = []
    for index, argument in enumerate(argv):
        if argument == OPTION:
            values.append(argv[index + 1] if index + 1 < len(argv) else "")
        elif argument.startswith(f"{OPTION}="):
            values.append(argument.removeprefix(f"{OPTION}="))
    if len(values) > 1:
        raise ValueError(f"{OPTION} given {len(values)} times; give one fold")
    if not values:
        return None
    if not values[0].isdigit():
        raise ValueError(f"{OPTION} needs a fold number >= 0, got {values[0]!r}")
    return int(values[0])


def fold_entry(split: dict[str, Any], fold: int) -> dict[str, dict[str, list[str]]]:
    """Fold ``fold`` of a split file's content: ``{"patients": {"train", "val"}, "frames": {"train", "val"}}``.

    Args:
        split: the parsed ``artifacts/split.json`` (see ``pipeline.splitting``).
        fold: the fold number, from 0.

    Raises:
        ValueError: the split has no fold ``fold`` (or no folds at all), or the fold lacks
            its train/val lists; the message names the split file.
    """
    folds = split.get("fold_frames") if isinstance(split, dict) else None
    n_folds = len(folds) if isinstance(folds, list) else 0
    if not 0 <= fold < n_folds:
        raise ValueError(f"{SPLIT_FILE}: {OPTION} {fold} but the split has {n_folds} fold(s)"
                         + (f", numbered 0 to {n_folds - 1}" if n_folds else "; re-run the split stage"))
    try:
        return {"patients": {name: list(split["folds"][fold][name]) for name in ("train", "val")},
                "frames": {name: list(split["fold_frames"][fold][name]) for name in ("train", "val")}}
    except (KeyError, IndexError, TypeError) as error:
        raise ValueError(f"{SPLIT_FILE}: no folds[{fold}]/fold_frames[{fold}] train/val lists ({error}); "
                         "re-run the split stage") from error
