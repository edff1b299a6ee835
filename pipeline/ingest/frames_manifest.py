"""Joining the pull stage's manifest to a ``trus frames`` manifest (``data.frames_manifest``).

Frames made by :func:`pipeline.ingest.raw_scans.extract_frames` travel to Roboflow and
back under their own name; Roboflow keeps the stem (``PT..._ST..._SR..._0003_png.rf.<hash>.jpg``),
so the join matches the stem of ``original_name`` and takes the patient key and the pixel
spacing from the frames manifest.
"""

from __future__ import annotations

import warnings
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

from pipeline.planes import normalise_plane
from pipeline.ingest.records import IngestError
from pipeline.layout import REGION_COLUMNS

JOIN_COLUMNS = ("original_name", "patient", "spacing_x_mm", "spacing_y_mm")
SPACING_COLUMNS = ("spacing_x_mm", "spacing_y_mm")
SIZE_COLUMNS = ("width", "height")


def _stem(name: str) -> str:
    return PurePath(name).stem


def read_frames_manifest(path: Path) -> pd.DataFrame:
    """Reads a frames manifest as ``patient``, ``spacing_x_mm``, ``spacing_y_mm`` (mm) and, when
    present, ``width``, ``height`` and the ``region_*`` box (px) and ``plane`` (``transverse``,
    ``sagittal`` or ``""``), indexed by name stem.

    Raises:
        IngestError: the file is missing or not CSV, lacks a column, has an empty name or
            patient, a non-numeric or non-positive spacing, an unknown plane, or one stem
            twice; the message names the file.
    """
    try:
        table = pd.read_csv(path, dtype={"original_name": str, "patient": str}, keep_default_na=False,
                            na_values={column: [""] for column in SPACING_COLUMNS})
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise IngestError(f"{path}: not a readable frames manifest ({error})") from error
    missing = [column for column in JOIN_COLUMNS if column not in table.columns]
    if missing:
        raise IngestError(f"{path}: not a frames manifest, missing column(s) {', '.join(missing)}")
    if (table["original_name"].str.strip() == "").any() or (table["patient"].str.strip() == "").any():
        raise IngestError(f"{path}: a row has an empty original_name or patient")
    for column in SPACING_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce")
        if (values.isna() & table[column].notna()).any() or (values <= 0).any():
            raise IngestError(f"{path}: {column} must be empty or a positive number (mm)")
        table[column] = values.astype(float)
    table.index = table["original_name"].map(_stem)
    duplicated = table.index[table.index.duplicated()].unique().tolist()
    if duplicated:
        raise IngestError(f"{path}: the same frame name appears twice: {', '.join(duplicated[:5])}")
    if "plane" in table.columns:
        table["plane"] = _checked_planes(table["plane"], path)
    optional = [c for c in (*SIZE_COLUMNS, *REGION_COLUMNS, "plane") if c in table.columns]
    return table[["patient", *SPACING_COLUMNS, *optional]]


def _checked_planes(values: pd.Series, path: Path) -> pd.Series:
    """The ``plane`` column as ``transverse`` / ``sagittal`` / ``""`` (unknown).

    Raises:
        IngestError: a value that is neither empty nor a plane name (``pipeline.planes``).
    """
    text = values.fillna("").astype(str).str.strip()
    planes = text.map(lambda value: normalise_plane(value) or "")
    bad = text[(text != "") & (planes == "")].unique().tolist()
    if bad:
        raise IngestError(f"{path}: plane must be empty, transverse or sagittal, got {', '.join(map(repr, bad[:5]))}")
    return planes


def join_frames_manifest(manifest: pd.DataFrame, frames_manifest_path: Path,
                         frames: pd.DataFrame | None = None) -> pd.DataFrame:
    """Takes ``patient``, spacing and the DICOM region from a frames manifest for every row whose name stem it holds.

    Args:
        manifest: the pull stage's manifest (``original_name``, ``patient``,
            ``spacing_x_mm``, ``spacing_y_mm``, ...); not modified.
        frames_manifest_path: the ``manifest.csv`` written by ``trus frames``.
        frames: that file already read by :func:`read_frames_manifest`, or None to read it.

    Returns:
        A copy of ``manifest``; matched rows carry the frames manifest's patient, its
        spacing (mm) and its ``region_*`` box (px) where those are known. Unmatched rows
        keep their values, with a warning that counts them.

    Raises:
        IngestError: the frames manifest is malformed (see :func:`read_frames_manifest`), or
            a matched frame changed size (Roboflow resized it, so the spacing no longer holds).
    """
    frames = read_frames_manifest(frames_manifest_path) if frames is None else frames
    stems = manifest["original_name"].map(_stem)
    found = stems.isin(frames.index).to_numpy()
    matched = frames.loc[stems[found]]
    _check_sizes(manifest[found], matched, frames_manifest_path)
    joined = manifest.copy()
    joined.loc[found, "patient"] = matched["patient"].to_numpy()
    for column in (*SPACING_COLUMNS, *(c for c in REGION_COLUMNS if c in frames.columns)):
        joined[column] = joined[column].astype(float) if column in joined.columns else np.nan
        matched_values = pd.to_numeric(matched[column], errors="coerce").astype(float)
        known, own = matched_values.to_numpy(), joined.loc[found, column].to_numpy()
        joined.loc[found, column] = np.where(np.isnan(known), own, known)
    if not found.all():
        warnings.warn(f"{(~found).sum()} of {len(found)} frame(s) are not in {frames_manifest_path}; "
                      "they keep their own patient and spacing", stacklevel=2)
    return joined


def _check_sizes(rows: pd.DataFrame, matched: pd.DataFrame, path: Path) -> None:
    """Raises IngestError when matched rows differ in width/height (px) from the frames manifest."""
    columns = list(SIZE_COLUMNS)
    if not set(columns) <= set(rows.columns) & set(matched.columns):
        return
    differs = (rows[columns].to_numpy() != matched[columns].to_numpy()).any(axis=1)
    if differs.any():
        raise IngestError(f"{path}: {differs.sum()} frame(s), e.g. {rows['original_name'].to_numpy()[differs][0]}, "
                          "differ in width/height from this manifest: Roboflow resized them, so the spacing no "
                          "longer holds; generate the dataset version without the Resize preprocessing step")
