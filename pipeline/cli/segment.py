"""Batch segmentation of frame files with an exported model (the ``trus segment`` command)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.imaging.frames import FRAME_SUFFIXES, FrameReadError, read_frames
from pipeline.inference.measure import class_areas, draw_overlay
from pipeline.inference.saving import write_mask_and_overlay
from pipeline.inference.predictor import Segmenter
from pipeline.files.atomic import write_text_atomically

AREAS_FILE = "areas.csv"
AREA_COLUMNS = ("file", "frame", "output", "width", "height", "class", "area_px", "area_mm2")


def expand_inputs(paths: Iterable[Path]) -> list[Path]:
    """Files as given, plus the frame files directly inside given folders (sorted).

    Raises:
        FrameReadError: a path that does not exist, or a folder without frames.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
            if not found:
                raise FrameReadError(f"{path}: no frame files ({', '.join(FRAME_SUFFIXES)})")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise FrameReadError(f"{path}: no such file or folder")
    return files


def unique_stems(files: list[Path]) -> Iterator[tuple[Path, str]]:
    """Pairs each file with an output stem, suffixing ``_2``, ``_3``... on repeated names."""
    seen: dict[str, int] = {}
    for path in files:
        count = seen.get(path.stem, 0) + 1
        seen[path.stem] = count
        yield path, path.stem if count == 1 else f"{path.stem}_{count}"


@dataclass(frozen=True)
class SegmentResult:
    """What a batch run produced: one area row per frame and class, and the failures."""

    areas: list[dict]
    failures: list[str]


def areas_csv(rows: list[dict]) -> str:
    """The area rows as CSV text (mm² empty when the spacing is unknown)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=AREA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({**row, "area_mm2": "" if row["area_mm2"] is None else f"{row['area_mm2']:.3f}"} for row in rows)
    return buffer.getvalue()


def segment_files(segmenter: Segmenter, files: list[Path], out_dir: Path, threshold: float | None = None,
                  progress: Iterable[tuple[Path, str]] | None = None) -> SegmentResult:
    """Segments every frame of every file; writes masks, overlays and ``areas.csv``.

    A file that cannot be read is reported in ``failures`` and skipped; every file
    written is complete (atomic writes). Multi-frame DICOMs give one output per frame
    (``<stem>_f000``...).

    Args:
        segmenter: the loaded model.
        files: frame files.
        out_dir: output folder (created).
        threshold: probability threshold; the model's own when None.
        progress: an iterable wrapping ``unique_stems(files)`` (e.g. a progress bar).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    threshold = segmenter.contract.threshold if threshold is None else threshold
    rows, failures = [], []
    for path, stem in progress if progress is not None else unique_stems(files):
        try:
            frames = list(read_frames(path))
        except FrameReadError as error:
            failures.append(str(error))
            continue
        for index, frame in enumerate(frames):
            name = stem if len(frames) == 1 else f"{stem}_f{index:03d}"
            masks = segmenter.segment(frame.gray, frame.region_box).masks(threshold)
            write_mask_and_overlay(out_dir, name, masks, draw_overlay(frame.gray, masks))
            for area in class_areas(masks, segmenter.classes, frame.spacing_mm):
                rows.append({"file": str(path), "frame": index, "output": name, "width": frame.gray.shape[1],
                             "height": frame.gray.shape[0], "class": area.name, "area_px": area.pixels,
                             "area_mm2": area.mm2})
    write_text_atomically(out_dir / AREAS_FILE, areas_csv(rows))
    return SegmentResult(rows, failures)
