"""Stage ``train``: processed frames + split -> ``models/checkpoint.pt`` and ``dvclive/``.

``python -m pipeline.stages.train`` reads ``data.classes``, ``preprocess.size`` and the ``model``,
``train`` and ``inference`` sections of params.yaml. The checkpoint holds the epoch with the
best validation score, the evaluate stage's definition on the masks inference makes (see
``pipeline.training.loop``).
"""

from __future__ import annotations

import json
import logging
from typing import Any


from pipeline.config import load_params
from pipeline.files.tables import read_table
from pipeline.layout import CHECKPOINT_FILE, DVCLIVE_DIR, PROCESSED_DIR, PROCESSED_MANIFEST, SPLIT_FILE
from pipeline.stages.runner import require_file, run_stage
from pipeline.training.data import FrameDataset, load_frames
from pipeline.training.loop import train_model
from pipeline.training.model import check_input_size

log = logging.getLogger(__name__)


def training_ids(split: dict[str, Any], known: set[str], fold: int | None = None) -> tuple[list[str], list[str]]:
    """Training and validation frame ids of a split file's content.

    An empty validation subset falls back to the training frames, with a logged warning.

    Args:
        split: the parsed ``artifacts/split.json``.
        known: frame ids of the processed manifest.
        fold: None for the split's train/val subsets; k (from 0) for fold k's frames:
            validation on its part of the train+val patients, training on the others.

    Raises:
        ValueError: the split is malformed, has no training frames, names unknown frames
            (it is older than the processed data), or has no fold ``fold``; the message
            names the split file.
    """
    if fold is not None:
        folds = split.get("fold_frames") if isinstance(split, dict) else None
        n_folds = len(folds) if isinstance(folds, list) else 0
        if not 0 <= fold < n_folds:
            raise ValueError(f"{SPLIT_FILE}: train.fold={fold} but the split has {n_folds} fold(s)"
                             + (f", numbered 0 to {n_folds - 1}" if n_folds else "; re-run the split stage"))
    where, scope = ("frames", "") if fold is None else (f"fold_frames[{fold}]", f" in fold {fold}")
    try:
        source = split["frames"] if fold is None else split["fold_frames"][fold]
        train_ids, val_ids = list(source["train"]), list(source["val"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"{SPLIT_FILE}: no {where}.train/{where}.val lists ({error}); "
                         "re-run the split stage") from error
    unknown = sorted(set(train_ids + val_ids) - known)
    if unknown:
        raise ValueError(f"{SPLIT_FILE}: {len(unknown)} frame(s) not in {PROCESSED_DIR / PROCESSED_MANIFEST} "
                         f"(e.g. {unknown[0]}); re-run the split stage")
    if not train_ids:
        raise ValueError(f"{SPLIT_FILE}: no training frames{scope}; check split.fractions")
    if not val_ids:
        log.warning("%s has no validation frames%s; validating on the training frames (the best epoch is then "
                    "chosen on training data)", SPLIT_FILE, scope)
        val_ids = train_ids
    return train_ids, val_ids


def main() -> None:
    """Loads the frames, trains, and writes the best checkpoint and the DVCLive metrics."""
    params = load_params()
    check_input_size(params.model, params.preprocess.size)  # before any frame is read
    for path, stage in ((PROCESSED_DIR / PROCESSED_MANIFEST, "preprocess"), (SPLIT_FILE, "split")):
        require_file(path, stage)
    manifest = read_table(PROCESSED_DIR / PROCESSED_MANIFEST)
    try:
        split = json.loads(SPLIT_FILE.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{SPLIT_FILE}: not JSON ({error}); re-run the split stage") from error
    train_ids, val_ids = training_ids(split, set(manifest["frame_id"]), params.train.fold)
    size, classes, model = params.preprocess.size, params.data.classes, params.model
    train_set = FrameDataset(*load_frames(PROCESSED_DIR, train_ids, size), len(classes), model.mean, model.std,
                             params.train.augment, params.train.seed)
    val_set = FrameDataset(*load_frames(PROCESSED_DIR, val_ids, size), len(classes), model.mean, model.std)
    history = train_model(model, params.train, classes, train_set, val_set, CHECKPOINT_FILE, DVCLIVE_DIR,
                          inference=params.inference)
    best = max(history, key=lambda metrics: metrics.score)
    subsets = "the split's train/val" if params.train.fold is None else f"fold {params.train.fold}"
    dice = ", ".join(f"{name} {value:.3f}" for name, value in best.val_dice.items())
    print(f"train ({subsets}): {len(train_ids)} training/{len(val_ids)} validation frames, {size}x{size}, "
          f"{model.arch}/{model.encoder}; best val score {best.score:.3f} (Dice {dice}) at epoch {best.epoch} "
          f"-> {CHECKPOINT_FILE}")


if __name__ == "__main__":
    run_stage(main)
