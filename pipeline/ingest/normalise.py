"""Normalising an export into original-size grey frames, bitmask label masks and a manifest.

One implementation for the pull stage and for checking an export by hand.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd
from tqdm import tqdm

from pipeline.config import DataParams
from pipeline.imaging.frames import FrameReadError, read_frame
from pipeline.inference.outputs import pack_masks, write_png_atomically
from pipeline.ingest.coco import export_info
from pipeline.ingest.formats import read_export
from pipeline.ingest.records import ExportFrame, IngestError
from pipeline.ingest.names import patient_of
from pipeline.layout import IMAGES, MANIFEST, MASKS, SOURCE_INFO
from pipeline.outputs import write_json_atomically

UNKNOWN_PATIENT_PREFIX = "unknown:"


@contextmanager
def opened_export(source: Path) -> Iterator[Path]:
    """Yields an export folder: ``source`` itself, or a zip extracted to a temporary folder.

    Raises:
        IngestError: missing source, or a corrupt zip.
    """
    if source.is_dir():
        yield source
        return
    if not source.is_file():
        raise IngestError(f"{source}: no such export (folder or .zip)")
    with TemporaryDirectory(prefix="trus-export-") as folder:
        try:
            with zipfile.ZipFile(source) as archive:
                archive.extractall(folder)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise IngestError(f"{source}: not a readable zip ({error})") from error
        yield Path(folder)


def content_digest(root: Path) -> str:
    """SHA-256 (first 16 hex) over the relative paths and bytes of every file below ``root``.

    The dataset version recorded in the model: the same export gives the same digest,
    whether it arrived as a folder, a zip or from the API.
    """
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def manifest_row(frame: ExportFrame, masks: np.ndarray, params: DataParams) -> dict:
    """The manifest row of one frame: identity, patient, size, spacing and class pixel counts."""
    patient = patient_of(frame.name.original_name, params.patient_pattern)
    row = {
        "frame_id": frame.name.frame_id,
        "patient": patient or f"{UNKNOWN_PATIENT_PREFIX}{frame.name.original_stem}",
        "original_name": frame.name.original_name,
        "export_file": frame.image_path.name,
        "export_split": frame.split,
        "width": frame.width,
        "height": frame.height,
        "spacing_x_mm": np.nan,
        "spacing_y_mm": np.nan,
        "annotated": frame.annotated,
    }
    row.update({f"px_{name}": int(mask.sum()) for name, mask in zip(params.classes, masks)})
    return row


def normalise_export(export_root: Path, out_dir: Path, params: DataParams, progress: bool = True) -> pd.DataFrame:
    """Writes ``images/``, ``masks/``, ``manifest.csv`` and ``source.json`` for every kept frame of an export.

    Args:
        export_root: an unpacked Roboflow COCO Segmentation export.
        out_dir: an existing, empty folder (the caller makes it atomic).
        params: the ``data`` section: classes, patient pattern, unannotated policy.
        progress: show a progress bar.

    Returns:
        The manifest, one row per written frame.

    Raises:
        IngestError: inconsistent export (missing images, classes, size mismatch, duplicates).
        FrameReadError: an image that cannot be decoded.
    """
    frames = read_export(export_root, params.format, params.classes)
    (out_dir / IMAGES).mkdir()
    (out_dir / MASKS).mkdir()
    rows = []
    for frame in tqdm(frames, desc="pull", unit="frame", disable=None if progress else True):
        if not frame.annotated and params.unannotated == "drop":
            continue
        gray = read_frame(frame.image_path).gray
        if gray.shape != (frame.height, frame.width):
            raise IngestError(f"{frame.image_path}: image is {gray.shape[1]}x{gray.shape[0]} but its "
                              f"annotations say {frame.width}x{frame.height}")
        masks = frame.masks(len(params.classes))
        row = manifest_row(frame, masks, params)
        write_png_atomically(out_dir / IMAGES / f"{row['frame_id']}.png", gray)
        write_png_atomically(out_dir / MASKS / f"{row['frame_id']}.png", pack_masks(masks))
        rows.append(row)
    manifest = pd.DataFrame(rows)
    if manifest.empty:
        raise IngestError(f"{export_root}: no frames to use (data.unannotated={params.unannotated})")
    duplicated = manifest["frame_id"][manifest["frame_id"].duplicated()].tolist()
    if duplicated:
        raise IngestError(f"{export_root}: the same image appears twice: {', '.join(duplicated[:5])}")
    unknown = manifest["patient"].str.startswith(UNKNOWN_PATIENT_PREFIX).sum()
    if unknown:
        warnings.warn(f"{unknown} frame(s) do not match data.patient_pattern; each is treated as its own patient",
                      stacklevel=2)
    manifest.to_csv(out_dir / MANIFEST, index=False)
    write_json_atomically(out_dir / SOURCE_INFO, {"format": params.format, "info": export_info(export_root),
                                                  "dataset_version": content_digest(export_root),
                                                  "frames": len(manifest), "patients": int(manifest["patient"].nunique())})
    return manifest


__all__ = ["FrameReadError", "IngestError", "normalise_export", "opened_export"]
