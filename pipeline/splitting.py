"""Patient-grouped, seeded train/val/test splits and k folds: no patient on two sides.

Patients can be stratified by a class: a patient is *positive* when any of its frames has
a pixel of that class (``px_<class> > 0``), and each subset and fold gets about its share
of positive and of negative patients.

The split file (``artifacts/split.json``, written by :func:`make_split`)::

    {
      "method": "patient" | "roboflow",
      "seed": 42,
      "fractions": [0.7, 0.15, 0.15],
      "stratify": "lesion" | null,
      "positive_patients": [...],            # patients with the stratify class ([] without)
      "patients": {"train": [...], "val": [...], "test": [...]},
      "frames": {"train": [frame_id, ...], "val": [...], "test": [...]},
      "folds": [{"train": [patient, ...], "val": [...]}, ...],      # k entries
      "fold_frames": [{"train": [frame_id, ...], "val": [...]}, ...]
    }

Fold ``i`` validates on the ``i``-th part of the train+val patients and trains on the
other ``k - 1`` parts; test patients are never in a fold. Fold frames are the train+val
frames of the fold's patients (with ``method: roboflow`` a straddling patient's test
frames stay in test). Patient lists are sorted; frame lists follow the frames table.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd

from pipeline.config import SplitParams

SUBSETS = ("train", "val", "test")
ROBOFLOW_SUBSETS = {"train": "train", "valid": "val", "val": "val", "test": "test"}
SHOWN_PATIENTS = 5
log = logging.getLogger(__name__)


def _strata(patients: Sequence[str], positive: Collection[str] | None) -> list[list[str]]:
    """Sorted, de-duplicated patients: one stratum, or positives then negatives (empty ones dropped)."""
    unique = sorted(set(patients))
    if positive is None:
        return [unique]
    chosen = set(positive)
    strata = [[p for p in unique if p in chosen], [p for p in unique if p not in chosen]]
    return [stratum for stratum in strata if stratum]


def _subset_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Patients per subset: val and test rounded with at least one each if wanted, train the rest."""
    wanted = [f > 0 for f in fractions]
    if n < sum(wanted):
        raise ValueError(f"{n} patient(s) cannot fill {sum(wanted)} non-empty subsets; "
                         "label more patients or set a split fraction to 0")
    counts = [max(1, round(f * n)) if f > 0 else 0 for f in fractions[1:]]
    while sum(counts) > n - (1 if wanted[0] else 0):
        counts[int(np.argmax(counts))] -= 1
    return [n - sum(counts), *counts]


def _apportion(total: int, sizes: Sequence[int]) -> list[int]:
    """Splits ``total`` items over parts in proportion to ``sizes`` (largest remainder, ties to the first)."""
    quotas = [total * size / sum(sizes) for size in sizes] if sum(sizes) else [0.0] * len(sizes)
    shares = [int(np.floor(q)) for q in quotas]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - shares[i]), i))
    for i in by_remainder[:total - sum(shares)]:
        shares[i] += 1
    return shares


def split_patients(patients: Sequence[str], fractions: Sequence[float], seed: int,
                   positive: Collection[str] | None = None) -> dict[str, list[str]]:
    """Assigns whole patients to train/val/test.

    Subset sizes come from ``fractions`` over all patients (every subset with a non-zero
    fraction gets at least one patient). Positive patients are apportioned to the subsets
    by size, then each stratum is shuffled with ``seed`` and cut test, val, train.
    Without ``positive`` this is one sorted, shuffled, cut list of patients.

    Args:
        patients: patient keys (duplicates are ignored).
        fractions: (train, val, test), summing to 1.
        seed: shuffling seed; the same seed and patients give the same split.
        positive: patients with the stratify class, or None for no stratification.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted.

    Raises:
        ValueError: fewer patients than subsets that need one.
    """
    strata = _strata(patients, positive)
    sizes = _subset_sizes(sum(map(len, strata)), fractions)
    shares = _apportion(len(strata[0]), sizes)
    per_stratum = [shares, [size - share for size, share in zip(sizes, shares)]][:len(strata)]
    rng = np.random.default_rng(seed)
    split: dict[str, list[str]] = {name: [] for name in SUBSETS}
    for stratum, (n_train, n_val, n_test) in zip(strata, per_stratum):
        order = [stratum[i] for i in rng.permutation(len(stratum))]
        split["test"] += order[:n_test]
        split["val"] += order[n_test:n_test + n_val]
        split["train"] += order[n_test + n_val:]
    return {name: sorted(split[name]) for name in SUBSETS}


def fold_patients(patients: Sequence[str], k: int, seed: int,
                  positive: Collection[str] | None = None) -> list[dict[str, list[str]]]:
    """k folds over patients: fold i validates on part i and trains on the other parts.

    Each stratum is shuffled with ``seed`` and the strata, positives first, are dealt
    round-robin over the parts, so parts differ by at most one patient and one positive.

    Args:
        patients: the train+val patient keys (duplicates are ignored).
        k: number of folds, >= 2.
        seed: shuffling seed.
        positive: patients with the stratify class, or None.

    Returns:
        k entries ``{"train": [...], "val": [...]}``, each sorted; the vals partition ``patients``.

    Raises:
        ValueError: fewer patients than folds.
    """
    strata = _strata(patients, positive)
    n = sum(map(len, strata))
    if n < k:
        raise ValueError(f"{n} train+val patient(s) cannot fill {k} folds; lower split.folds "
                         "or label more patients")
    rng = np.random.default_rng(seed)
    dealt = [stratum[i] for stratum in strata for i in rng.permutation(len(stratum))]
    parts = [sorted(dealt[i::k]) for i in range(k)]
    return [{"train": sorted(p for j, part in enumerate(parts) if j != i for p in part), "val": parts[i]}
            for i in range(k)]


def frames_by_subset(table: pd.DataFrame, patients: dict[str, list[str]]) -> dict[str, list[str]]:
    """Frame ids of each subset, in the table's order (columns ``frame_id``, ``patient``)."""
    return {name: table.loc[table["patient"].isin(patients[name]), "frame_id"].tolist() for name in SUBSETS}


def positive_patients(table: pd.DataFrame, stratify: str | None) -> set[str] | None:
    """Patients with a pixel of class ``stratify`` in any frame, or None without stratification.

    Raises:
        ValueError: the table has no ``px_<stratify>`` column.
    """
    if stratify is None:
        return None
    column = f"px_{stratify}"
    if column not in table.columns:
        classes = ", ".join(c.removeprefix("px_") for c in table.columns if c.startswith("px_"))
        raise ValueError(f"split.stratify: {stratify!r} is not a class of the frames (they have {classes or 'none'})")
    return set(table.loc[table[column] > 0, "patient"])


def roboflow_frames(table: pd.DataFrame) -> dict[str, list[str]]:
    """Frame ids per subset as Roboflow's own folders put them (column ``export_split``).

    Raises:
        ValueError: a folder other than train/valid/test.
    """
    unknown = sorted(set(table["export_split"]) - set(ROBOFLOW_SUBSETS))
    if unknown:
        raise ValueError(f"split.method roboflow: export folder(s) {', '.join(map(str, unknown))} are not "
                         "train/valid/test; use split.method patient")
    subset = table["export_split"].map(ROBOFLOW_SUBSETS)
    return {name: table.loc[subset == name, "frame_id"].tolist() for name in SUBSETS}


def straddling_patients(table: pd.DataFrame, frames: dict[str, list[str]]) -> list[str]:
    """Patients with frames in more than one subset, sorted."""
    patient_of = table.set_index("frame_id")["patient"]
    sides = pd.concat([pd.Series(name, index=patient_of[frames[name]].to_numpy()) for name in SUBSETS])
    counts = sides.groupby(level=0).nunique()
    return sorted(counts[counts > 1].index)


def make_split(table: pd.DataFrame, params: SplitParams) -> dict:
    """The split file's content (see the module docstring) for a frames table.

    With ``method: roboflow`` a logged warning names the patients that straddle Roboflow's folders.

    Args:
        table: one row per frame: ``frame_id``, ``patient``, ``px_<class>`` and, for
            ``method: roboflow``, ``export_split``.
        params: the ``split`` section.

    Raises:
        ValueError: too few patients for the subsets or folds, an unknown stratify class
            or Roboflow folder.
    """
    positive = positive_patients(table, params.stratify)
    if params.method == "roboflow":
        frames = roboflow_frames(table)
        by_frame = table.set_index("frame_id")["patient"]
        patients = {name: sorted(set(by_frame[frames[name]])) for name in SUBSETS}
        straddling = straddling_patients(table, frames)
        if straddling:
            shown = ", ".join(straddling[:SHOWN_PATIENTS]) + (", ..." if len(straddling) > SHOWN_PATIENTS else "")
            log.warning("%d patient(s) straddle Roboflow's train/valid/test folders (%s); their frames are on two "
                        "sides, so validation and test scores are optimistic", len(straddling), shown)
    else:
        patients = split_patients(table["patient"].tolist(), params.fractions, params.seed, positive)
        frames = frames_by_subset(table, patients)
    folds = fold_patients(patients["train"] + patients["val"], params.folds, params.seed, positive)
    pool = table[table["frame_id"].isin(frames["train"] + frames["val"])]
    fold_frames = [{name: pool.loc[pool["patient"].isin(fold[name]), "frame_id"].tolist() for name in ("train", "val")}
                   for fold in folds]
    return {"method": params.method, "seed": params.seed, "fractions": list(params.fractions),
            "stratify": params.stratify, "positive_patients": sorted(positive or ()),
            "patients": patients, "frames": frames, "folds": folds, "fold_frames": fold_frames}
