"""Patient-grouped, seeded train/val/test splits: no patient on two sides."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

SUBSETS = ("train", "val", "test")


def split_patients(patients: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, list[str]]:
    """Assigns whole patients to train/val/test.

    Patients are sorted, shuffled with ``seed`` and cut by ``fractions``; every subset
    with a non-zero fraction gets at least one patient.

    Args:
        patients: patient keys (duplicates are ignored).
        fractions: (train, val, test), summing to 1.
        seed: shuffling seed; the same seed and patients give the same split.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted.

    Raises:
        ValueError: fewer patients than subsets that need one.
    """
    unique = sorted(set(patients))
    wanted = [f > 0 for f in fractions]
    if len(unique) < sum(wanted):
        raise ValueError(f"{len(unique)} patient(s) cannot fill {sum(wanted)} non-empty subsets; "
                         "label more patients or set a split fraction to 0")
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    counts = [max(1, round(f * len(unique))) if f > 0 else 0 for f in fractions[1:]]
    while sum(counts) > len(unique) - (1 if wanted[0] else 0):
        counts[int(np.argmax(counts))] -= 1
    n_val, n_test = counts
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def frames_by_subset(table: pd.DataFrame, patients: dict[str, list[str]]) -> dict[str, list[str]]:
    """Frame ids of each subset, in the table's order (columns ``frame_id``, ``patient``)."""
    return {name: table.loc[table["patient"].isin(patients[name]), "frame_id"].tolist() for name in SUBSETS}
