"""Stage ``train``: processed frames + split -> ``models/checkpoint.pt`` and ``dvclive/``.

``python -m pipeline.stages.train`` reads ``data.classes``, ``preprocess.size`` and the ``model``,
``train`` and ``inference`` sections of params.yaml, and each frame's plane from the processed
manifest's ``plane`` column (for the plane head, ``model.plane_head``: ``auto`` is resolved
here, see :func:`frame_planes`). The checkpoint holds the model after
``train.epochs`` epochs (``train.keep: last``, or the epoch early stopping stopped at), or the
epoch with the best validation score (``keep: best``); see ``pipeline.training.loop``.
``train.processes: N`` runs the stage again in N processes under torchrun
(:func:`launched_in_processes`). A run killed before its end continues from its last complete
epoch when the stage runs again with the same params, data and code
(:mod:`pipeline.training.resume`, :func:`resume_spec`).

``python -m pipeline.stages.train --fold K`` trains cross-validation fold K with the same
recipe (``cv/dvc.yaml``): on the other folds' patients, validating on fold K's, into
``models/folds/K/checkpoint.pt`` and ``dvclive/folds/K/`` (:func:`train_run`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Params, ParamsError, TrainParams, load_params
from pipeline.files.tables import read_table
from pipeline.layout import (CHECKPOINT_FILE, DVCLIVE_DIR, PROCESSED_DIR, PROCESSED_MANIFEST, SPLIT_FILE,
                             fold_checkpoint, fold_dvclive_dir)
from pipeline.stages.fold import fold_entry, fold_option
from pipeline.stages.runner import require_file, run_stage
from pipeline.training.data import FrameDataset, load_frames
from pipeline.training.devices import available_cpus
from pipeline.training.distributed import (SINGLE, World, check_world, exit_with_parent, launch, needs_launch,
                                           world_from_environment)
from pipeline.training.loop import EpochMetrics, kept_metrics, train_model
from pipeline.training.model import check_input_size
from pipeline.training.plane_head import plane_labels, resolve_plane_head
from pipeline.training.resume import ResumeSpec, code_files, code_root, fingerprint, resume_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRun:
    """What one run of the stage trains, and where it writes.

    Attributes:
        fold: None for the deployed model (the split's train/val subsets), K for
            cross-validation fold K.
        checkpoint: the checkpoint file to write.
        live_dir: DVCLive's folder.
    """

    fold: int | None
    checkpoint: Path
    live_dir: Path

    @property
    def subsets(self) -> str:
        """How the console names the frames: ``the split's train/val`` or ``fold K``."""
        return "the split's train/val" if self.fold is None else f"fold {self.fold}"


def train_run(fold: int | None) -> TrainRun:
    """The deployed model's run (``fold`` None) or fold ``fold``'s, with its output paths (``pipeline.layout``)."""
    if fold is None:
        return TrainRun(None, CHECKPOINT_FILE, DVCLIVE_DIR)
    return TrainRun(fold, fold_checkpoint(fold), fold_dvclive_dir(fold))


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
    where, scope = ("frames", "") if fold is None else (f"fold_frames[{fold}]", f" in fold {fold}")
    try:
        source = split["frames"] if fold is None else fold_entry(split, fold)["frames"]
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
    run = train_run(fold_option(sys.argv[1:]))
    params = load_params()
    check_fold_selection(params.train, run.fold)
    check_input_size(params.model, params.preprocess.size)  # before any frame is read
    for path, stage in ((PROCESSED_DIR / PROCESSED_MANIFEST, "preprocess"), (SPLIT_FILE, "split")):
        require_file(path, stage)
    if launched_in_processes(params.train.processes):
        return
    world = training_world(params.train.processes)
    manifest = read_table(PROCESSED_DIR / PROCESSED_MANIFEST)
    try:
        split = json.loads(SPLIT_FILE.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{SPLIT_FILE}: not JSON ({error}); re-run the split stage") from error
    train_ids, val_ids = training_ids(split, set(manifest["frame_id"]), run.fold)
    train_planes, val_planes = frame_planes(manifest, train_ids), frame_planes(manifest, val_ids)
    size, classes, model = params.preprocess.size, params.data.classes, params.model
    model = resolve_plane_head(model, train_planes)  # before any frame is read: `true` without labels stops here
    train_set = FrameDataset(*load_frames(PROCESSED_DIR, train_ids, size), len(classes), model.mean, model.std,
                             params.train.augment, params.train.seed, params.train.patch, train_planes)
    val_set = FrameDataset(*load_frames(PROCESSED_DIR, val_ids, size), len(classes), model.mean, model.std,
                           planes=val_planes)
    history = train_model(model, params.train, classes, train_set, val_set, run.checkpoint, run.live_dir,
                          inference=params.inference, world=world, resume=resume_spec(params, run, train_set, val_set))
    if world.is_main:
        network = f"{model.arch}/{model.encoder}" if model.encoder else model.arch  # SegNet, UNetBilinear: no encoder
        network += f" with the plane head (on the {model.plane_classifier})" if model.plane_head else ""
        print(f"train ({run.subsets}): {len(train_ids)} training/{len(val_ids)} validation frames, {size}x{size}, "
              f"{network}; {kept_summary(history, params.train)} -> {run.checkpoint}")


def frame_planes(manifest: pd.DataFrame, frame_ids: list[str]) -> np.ndarray:
    """(N,) int64 plane labels of ``frame_ids`` from the processed manifest's ``plane`` column.

    0 transverse, 1 sagittal, -1 unknown (an empty cell, or a manifest from before planes).
    """
    if "plane" not in manifest.columns:
        return plane_labels([None] * len(frame_ids))
    return plane_labels(manifest.set_index("frame_id")["plane"].loc[frame_ids])


def check_fold_selection(train: TrainParams, fold: int | None) -> None:
    """Refuses to choose a cross-validation fold's epoch on the patients the fold is scored on.

    Fold K validates on the patients its out-of-fold scores come from; ``train.keep: best``
    or early stopping would pick the epoch on them and flatter the report.

    Raises:
        ParamsError: ``fold`` is set and ``keep`` is ``best`` or early stopping is on.
    """
    if fold is None:
        return
    if train.keep == "best":
        raise ParamsError(f"train.keep is best, but fold {fold} is scored on its validation patients: "
                          "cross-validation keeps the last epoch (set train.keep=last)")
    if train.early_stopping_patience is not None:
        raise ParamsError(f"train.early_stopping_patience is set, but fold {fold} is scored on its validation "
                          "patients: cross-validation trains the fixed epoch budget "
                          "(set train.early_stopping_patience=null)")


def launched_in_processes(processes: int) -> bool:
    """Runs this stage again in ``train.processes`` processes under torchrun, when it asks for several.

    Returns:
        True when the processes ran (and succeeded): this process has nothing left to do.

    Raises:
        ChildProcessError: a process failed; their messages are above.
    """
    if not needs_launch(processes, os.environ):
        return False
    status = launch(processes, "pipeline.stages.train", sys.argv[1:], available_cpus())
    if status:
        raise ChildProcessError(f"training in {processes} processes failed (torchrun exit status {status}); "
                                "see the processes' messages above")
    return True


def training_world(processes: int) -> World:
    """This process's place among the training processes (one, unless torchrun started it).

    Raises:
        ParamsError: torchrun started another number of processes than ``train.processes``.
    """
    world = world_from_environment(os.environ) or SINGLE
    check_world(world, processes)
    if world.distributed:
        exit_with_parent()  # not orphaned by a kill of the stage's process group
    return world


def resume_spec(params: Params, run: TrainRun, train_set: FrameDataset, val_set: FrameDataset) -> ResumeSpec:
    """Where this run keeps its resume state, and the fingerprint the state must match.

    The fingerprint covers the params the stage reads (``data.classes``, ``preprocess.size``,
    ``model``, ``train``, ``inference``) and the fold, the split file and the processed
    manifest, the frames and masks loaded, and the code of every ``pipeline`` module imported.
    """
    settings = {"data.classes": params.data.classes, "preprocess.size": params.preprocess.size,
                "model": dataclasses.asdict(params.model), "train": dataclasses.asdict(params.train),
                "inference": dataclasses.asdict(params.inference), "fold": run.fold}
    arrays = [train_set.images, train_set.masks, val_set.images, val_set.masks]
    return ResumeSpec(resume_folder(run.checkpoint),
                      fingerprint(settings, [SPLIT_FILE, PROCESSED_DIR / PROCESSED_MANIFEST], arrays, code_files(),
                                  code_root()))


def kept_summary(history: list[EpochMetrics], train: TrainParams) -> str:
    """What the checkpoint holds, for the console: the kept epoch, its score, and the best one."""
    kept, best = kept_metrics(history, train.keep), kept_metrics(history, "best")
    dice = ", ".join(f"{name} {value:.3f}" for name, value in kept.val_dice.items())
    stopped = f" (early stop of {train.epochs})" if len(history) < train.epochs else f" of {train.epochs}"
    return (f"kept epoch {kept.epoch}{stopped} (keep: {train.keep}), val score {kept.score:.3f} (Dice {dice}); "
            f"best val score {best.score:.3f} at epoch {best.epoch}")


if __name__ == "__main__":
    run_stage(main)
