"""Stage ``split``: patient-grouped train/val/test and k folds -> ``artifacts/split.json``.

``python -m pipeline.stages.split`` reads the ``split`` section of params.yaml; the file's
structure is described in :mod:`pipeline.splitting`.
"""

from __future__ import annotations

from collections.abc import Collection


from pipeline.config import load_params
from pipeline.files.tables import read_table
from pipeline.layout import PROCESSED_DIR, PROCESSED_MANIFEST, SPLIT_FILE
from pipeline.files.atomic import write_json_atomically
from pipeline.splitting import SUBSETS, make_split
from pipeline.stages.runner import require_file, run_stage


def summary_lines(split: dict) -> list[str]:
    """Console summary of a split file's content: subsets, folds, and positives when stratified."""
    positive, stratify = set(split["positive_patients"]), split["stratify"]

    def count(patients: Collection[str]) -> str:
        return f"{len(patients)} ({len(positive & set(patients))} with {stratify})" if stratify else f"{len(patients)}"

    subsets = ", ".join(f"{name} {count(split['patients'][name])} patients/{len(split['frames'][name])} frames"
                        for name in SUBSETS)
    pool = set(split["patients"]["train"]) | set(split["patients"]["val"])
    folds = ", ".join(count(fold["val"]) for fold in split["folds"])
    return [f"split ({split['method']}): {subsets} -> {SPLIT_FILE}",
            f"split: {len(split['folds'])} folds over {count(pool)} train+val patients; "
            f"validation patients per fold: {folds}"]


def main() -> None:
    """Splits the processed frames by patient, makes the folds and writes the split file."""
    params = load_params().split
    require_file(PROCESSED_DIR / PROCESSED_MANIFEST, "preprocess")
    table = read_table(PROCESSED_DIR / PROCESSED_MANIFEST)
    split = make_split(table, params)
    write_json_atomically(SPLIT_FILE, split)
    print("\n".join(summary_lines(split)))


if __name__ == "__main__":
    run_stage(main)
