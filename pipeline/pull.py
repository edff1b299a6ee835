"""Stage ``pull``: annotation export -> ``artifacts/frames`` (grey frames, masks, manifest).

``python -m pipeline.pull`` reads the ``data`` section of params.yaml.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import load_params
from pipeline.ingest.normalise import normalise_export, opened_export
from pipeline.layout import FRAMES_DIR
from pipeline.outputs import atomic_directory
from pipeline.stage import run_stage


def main() -> None:
    """Normalises the export named by ``data.export_dir`` into ``artifacts/frames``."""
    params = load_params().data
    with opened_export(Path(params.export_dir)) as export_root, atomic_directory(FRAMES_DIR) as out_dir:
        manifest = normalise_export(export_root, out_dir, params)
    print(f"pull: {len(manifest)} frames of {manifest['patient'].nunique()} patients -> {FRAMES_DIR}")


if __name__ == "__main__":
    run_stage(main)
