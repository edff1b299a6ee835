"""Stage ``split``: patient-grouped train/val/test -> ``artifacts/split.json``.

``python -m pipeline.split`` reads the ``split`` section of params.yaml.
"""

from __future__ import annotations

import pandas as pd

from pipeline.config import load_params
from pipeline.layout import PROCESSED_DIR, PROCESSED_MANIFEST, SPLIT_FILE
from pipeline.outputs import write_json_atomically
from pipeline.splitting import SUBSETS, frames_by_subset, split_patients
from pipeline.stage import require_file, run_stage


def main() -> None:
    """Splits the processed frames by patient and writes the split file."""
    params = load_params().split
    require_file(PROCESSED_DIR / PROCESSED_MANIFEST, "preprocess")
    table = pd.read_csv(PROCESSED_DIR / PROCESSED_MANIFEST, dtype={"patient": str})
    patients = split_patients(table["patient"].tolist(), params.fractions, params.seed)
    frames = frames_by_subset(table, patients)
    write_json_atomically(SPLIT_FILE, {"seed": params.seed, "fractions": list(params.fractions),
                                       "patients": patients, "frames": frames})
    summary = ", ".join(f"{name} {len(patients[name])} patients/{len(frames[name])} frames" for name in SUBSETS)
    print(f"split: {summary} -> {SPLIT_FILE}")


if __name__ == "__main__":
    run_stage(main)
