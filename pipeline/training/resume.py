"""The resume state of an interrupted training run: where it lives, what it must match, RNG and DVCLive files.

After every epoch the loop writes ``.trus-resume/<checkpoint path>/state.pt`` (e.g.
``.trus-resume/models-checkpoint/state.pt``). The folder is not a DVC output: DVC deletes a
stage's outputs before running it, so a state kept among them would be gone when
``dvc repro`` reruns the killed stage. It is ignored by git (``.gitignore``), is no DVC
dependency or output, and is deleted when the run completes. A state is used only when its
:func:`fingerprint` equals the new run's: the params the stage reads, the split and manifest
files, the frames themselves, the training code and the torch version. Otherwise it is
discarded with one logged line.

Content (``torch.save`` of a dict, readable with ``weights_only=True``): ``fingerprint``,
the model, optimiser, scheduler and gradient scaler ``state_dict``s, the best weights (for
``train.keep: best``), the :class:`~pipeline.training.progress.Progress`, the metrics of every
epoch, the DVCLive folder's files, and every process's RNG states (:func:`rng_states`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.files.atomic import atomic_file
from pipeline.training.files import LOAD_ERRORS, first_line

RESUME_ROOT = Path(".trus-resume")
STATE_FILE = "state.pt"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumeSpec:
    """Where a run keeps its resume state, and what the state must have been written for.

    Attributes:
        folder: the run's own folder under :data:`RESUME_ROOT`.
        fingerprint: the run's :func:`fingerprint` (64 hex digits).
    """

    folder: Path
    fingerprint: str

    @property
    def path(self) -> Path:
        """The state file."""
        return self.folder / STATE_FILE


def resume_folder(checkpoint: Path, root: Path = RESUME_ROOT) -> Path:
    """The resume folder of the run writing ``checkpoint``: ``models/folds/2/checkpoint.pt`` -> ``root/models-folds-2-checkpoint``."""
    return root / "-".join(Path(checkpoint).with_suffix("").parts)


def fingerprint(settings: Mapping[str, Any], files: Sequence[Path], arrays: Sequence[np.ndarray],
                code: Sequence[Path], code_root: Path = Path(".")) -> str:
    """SHA-256 of what a training run's result depends on.

    Args:
        settings: the params the run reads (JSON-serialisable, or turned to text).
        files: input files, by name and bytes (the split, the processed manifest), relative
            to the working directory.
        arrays: the frames and masks as loaded, by shape, dtype and bytes.
        code: the source files of the code that trains, by name (relative to ``code_root``)
            and bytes.
        code_root: the folder ``code`` is relative to (:func:`code_root`), so the names, and
            the fingerprint, do not depend on where the project or the working directory is.

    Returns:
        64 hex digits; the torch version is part of it.
    """
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(torch.__version__.encode())
    named = [(path, Path(path)) for path in files] + [(path, Path(code_root) / path) for path in code]
    for name, path in named:
        digest.update(str(name).encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    for array in arrays:
        digest.update(f"{array.shape}{array.dtype}".encode() + hashlib.sha256(np.ascontiguousarray(array)).digest())
    return digest.hexdigest()


def code_root(package: str = "pipeline") -> Path:
    """The folder holding ``package`` (the project root for ``pipeline``), absolute."""
    return Path(sys.modules[package].__file__ or ".").resolve().parent.parent


def code_files(package: str = "pipeline") -> list[Path]:
    """The source files of every module of ``package`` imported so far, relative to :func:`code_root`, sorted."""
    root = code_root(package)
    files = {Path(module.__file__).resolve() for name, module in list(sys.modules.items())
             if name.split(".")[0] == package and getattr(module, "__file__", None)}
    return sorted(path.relative_to(root) for path in files)


def rng_states() -> dict[str, Any]:
    """This process's generators: Python's, NumPy's global, torch's CPU and every CUDA device's."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(position), int(has_gauss), float(cached)),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng_states(states: Mapping[str, Any]) -> None:
    """Puts back generators saved by :func:`rng_states` (CUDA's only when there are as many devices)."""
    random.setstate(states["python"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def read_folder(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` as text, by its ``/``-separated path relative to ``folder``."""
    return {path.relative_to(folder).as_posix(): path.read_text()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def write_folder(folder: Path, files: Mapping[str, str]) -> None:
    """Makes ``folder`` hold exactly ``files`` (relative path -> text), as :func:`read_folder` returned them."""
    shutil.rmtree(folder, ignore_errors=True)
    for name, text in files.items():
        target = Path(folder) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def save_state(spec: ResumeSpec, state: Mapping[str, Any]) -> None:
    """Writes ``state`` with the spec's fingerprint, via a temporary file and rename (a kill leaves the previous one)."""
    with atomic_file(spec.path) as temporary:
        torch.save({**state, "fingerprint": spec.fingerprint}, temporary)


def load_state(spec: ResumeSpec) -> dict[str, Any] | None:
    """The saved state of this run, or None to start afresh.

    None when there is no state; a state written for other params, data or code, or an
    unreadable one, is deleted with one logged warning.
    """
    if not spec.path.is_file():
        return None
    try:
        state = torch.load(spec.path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as error:
        log.warning("%s: unreadable resume state discarded, training from the start (%s)", spec.path,
                    first_line(error))
        discard(spec)
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != spec.fingerprint:
        log.warning("%s: resume state discarded, training from the start: it was written for other params, "
                    "data or code", spec.path)
        discard(spec)
        return None
    return state


def discard(spec: ResumeSpec) -> None:
    """Deletes the run's resume folder (and :data:`RESUME_ROOT` when it is left empty)."""
    shutil.rmtree(spec.folder, ignore_errors=True)
    try:
        spec.folder.parent.rmdir()
    except OSError:  # not empty (other runs' states), or already gone
        pass
