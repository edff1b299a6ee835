"""Stage ``preprocess``: ``artifacts/frames`` -> ``artifacts/processed`` (network-size frames and masks).

``python -m pipeline.preprocess`` reads the ``preprocess`` section of params.yaml and uses
the same ``preprocess_frame`` as evaluation, the CLI and the app.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.config import load_params
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import FrameGeometry
from pipeline.imaging.spec import PreprocessSpec
from pipeline.imaging.transform import preprocess_frame, preprocess_mask
from pipeline.inference.outputs import read_bitmask, write_png_atomically
from pipeline.layout import FRAMES_DIR, IMAGES, MANIFEST, MASKS, PREPROCESS_PLOTS_DIR, PROCESSED_DIR, PROCESSED_MANIFEST
from pipeline.outputs import atomic_directory
from pipeline.stage import require_file, run_stage

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


def preprocess_all(frames_dir: Path, out_dir: Path, spec: PreprocessSpec, plots_dir: Path) -> pd.DataFrame:
    """Preprocesses every frame and mask listed in ``frames_dir/manifest.csv``.

    Returns:
        The manifest joined with each frame's geometry and its spacing on the network grid
        (``net_spacing_x_mm``, ``net_spacing_y_mm``: mm per network pixel), written as ``frames.csv``.
    """
    manifest = pd.read_csv(frames_dir / MANIFEST)
    (out_dir / IMAGES).mkdir()
    (out_dir / MASKS).mkdir()
    geometries = []
    for index, frame_id in enumerate(tqdm(manifest["frame_id"], desc="preprocess", unit="frame", disable=None)):
        raw = read_frame(frames_dir / IMAGES / f"{frame_id}.png").gray
        processed = preprocess_frame(raw, spec)
        mask = preprocess_mask(read_bitmask(frames_dir / MASKS / f"{frame_id}.png"), processed.geometry)
        write_png_atomically(out_dir / IMAGES / f"{frame_id}.png", processed.image)
        write_png_atomically(out_dir / MASKS / f"{frame_id}.png", mask)
        if index < PLOT_PAIRS:
            write_png_atomically(plots_dir / f"{frame_id}.png", side_by_side(raw, processed.image))
        geometries.append({**processed.geometry.to_dict(), **network_spacing_columns(manifest.iloc[index],
                                                                                       processed.geometry)})
    table = pd.concat([manifest, pd.DataFrame(geometries)], axis=1)
    table.to_csv(out_dir / PROCESSED_MANIFEST, index=False)
    return table


def main() -> None:
    """Runs the stage on ``artifacts/frames``."""
    spec = load_params().preprocess
    require_file(FRAMES_DIR / MANIFEST, "pull")
    with atomic_directory(PROCESSED_DIR) as out_dir, atomic_directory(PREPROCESS_PLOTS_DIR) as plots_dir:
        table = preprocess_all(FRAMES_DIR, out_dir, spec, plots_dir)
    print(f"preprocess: {len(table)} frames -> {PROCESSED_DIR} ({spec.size}x{spec.size}, "
          f"crop {spec.crop}, {spec.resize}, filter {spec.filter.method})")


if __name__ == "__main__":
    run_stage(main)
