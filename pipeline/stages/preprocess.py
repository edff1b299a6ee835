"""Stage ``preprocess``: ``artifacts/frames`` -> ``artifacts/processed`` (network-size frames and masks).

``python -m pipeline.stages.preprocess`` reads the ``preprocess`` section of params.yaml and uses
the same ``preprocess_frame`` as evaluation, the CLI and the app.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.config import load_params
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import FrameGeometry
from pipeline.imaging.spec import PreprocessSpec
from pipeline.imaging.preprocessing import preprocess_frame, preprocess_mask
from pipeline.imaging.masks import read_bitmask
from pipeline.imaging.png import write_png_atomically
from pipeline.files.tables import read_table
from pipeline.layout import (FRAMES_DIR, IMAGES, MANIFEST, MASKS, PREPROCESS_PLOTS_DIR, PROCESSED_DIR,
                             PROCESSED_MANIFEST, REGION_COLUMNS)
from pipeline.files.atomic import staged_folder
from pipeline.stages.runner import require_file, run_stage

PLOT_PAIRS = 4


def side_by_side(raw: np.ndarray, processed: np.ndarray) -> np.ndarray:
    """Raw frame (scaled to the processed height) beside the processed frame, (S, W', ) uint8."""
    height = processed.shape[0]
    width = max(1, round(raw.shape[1] * height / raw.shape[0]))
    scaled = cv2.resize(raw, (width, height), interpolation=cv2.INTER_AREA)
    gap = np.full((height, 8), 255, np.uint8)
    return np.hstack([scaled, gap, processed])


def network_spacing_columns(row: pd.Series, geometry: FrameGeometry) -> dict[str, float]:
    """``net_spacing_x_mm``/``net_spacing_y_mm``: mm per network pixel, NaN when the frame's spacing is unknown."""
    x, y = row.get("spacing_x_mm", np.nan), row.get("spacing_y_mm", np.nan)
    spacing = None if pd.isna(x) or pd.isna(y) else (float(x), float(y))
    net = geometry.network_spacing_mm(spacing) or (np.nan, np.nan)
    return {"net_spacing_x_mm": net[0], "net_spacing_y_mm": net[1]}


def region_box_of(row: pd.Series) -> tuple[int, int, int, int] | None:
    """The frame's DICOM ultrasound region (x, y, w, h) px from its manifest row, or None when unknown."""
    values = [row.get(column, np.nan) for column in REGION_COLUMNS]
    return None if any(pd.isna(value) for value in values) else tuple(int(value) for value in values)


def preprocess_one(row: pd.Series, plots_dir: Path | None, frames_dir: Path, out_dir: Path,
                   spec: PreprocessSpec) -> dict[str, float]:
    """Preprocesses one frame and its mask; returns its geometry and network spacing columns."""
    frame_id = row["frame_id"]
    raw = read_frame(frames_dir / IMAGES / f"{frame_id}.png").gray
    processed = preprocess_frame(raw, spec, region_box=region_box_of(row))
    mask = preprocess_mask(read_bitmask(frames_dir / MASKS / f"{frame_id}.png"), processed.geometry)
    write_png_atomically(out_dir / IMAGES / f"{frame_id}.png", processed.image)
    write_png_atomically(out_dir / MASKS / f"{frame_id}.png", mask)
    if plots_dir is not None:
        write_png_atomically(plots_dir / f"{frame_id}.png", side_by_side(raw, processed.image))
    return {**processed.geometry.to_dict(), **network_spacing_columns(row, processed.geometry)}


def preprocess_all(frames_dir: Path, out_dir: Path, spec: PreprocessSpec, plots_dir: Path,
                   workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Preprocesses every frame and mask listed in ``frames_dir/manifest.csv``.

    Frames are independent, so they run on ``workers`` threads (OpenCV and the PNG codec
    release the GIL); the outputs do not depend on the number of threads.

    Args:
        frames_dir: the pull stage's output.
        out_dir: an existing, empty folder for ``images/``, ``masks/`` and ``frames.csv``.
        spec: the preprocessing spec.
        plots_dir: an existing folder for the first :data:`PLOT_PAIRS` raw | processed pairs.
        workers: threads; None uses every core.
        progress: show a progress bar.

    Returns:
        The manifest joined with each frame's geometry and its spacing on the network grid
        (``net_spacing_x_mm``, ``net_spacing_y_mm``: mm per network pixel), written as ``frames.csv``.
    """
    manifest = read_table(frames_dir / MANIFEST)
    (out_dir / IMAGES).mkdir()
    (out_dir / MASKS).mkdir()
    rows = [row for _, row in manifest.iterrows()]
    plot_dirs = [plots_dir if index < PLOT_PAIRS else None for index in range(len(rows))]
    one = functools.partial(preprocess_one, frames_dir=frames_dir, out_dir=out_dir, spec=spec)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        geometries = list(tqdm(pool.map(one, rows, plot_dirs, chunksize=4), total=len(rows), desc="preprocess",
                               unit="frame", disable=None if progress else True))
    table = pd.concat([manifest, pd.DataFrame(geometries)], axis=1)
    table.to_csv(out_dir / PROCESSED_MANIFEST, index=False)
    return table


def main() -> None:
    """Runs the stage on ``artifacts/frames``."""
    spec = load_params().preprocess
    require_file(FRAMES_DIR / MANIFEST, "pull")
    with staged_folder(PROCESSED_DIR) as out_dir, staged_folder(PREPROCESS_PLOTS_DIR) as plots_dir:
        table = preprocess_all(FRAMES_DIR, out_dir, spec, plots_dir)
    print(f"preprocess: {len(table)} frames -> {PROCESSED_DIR} ({spec.size}x{spec.size}, "
          f"crop {spec.crop}, {spec.resize}, filter {spec.filter.method})")


if __name__ == "__main__":
    run_stage(main)
