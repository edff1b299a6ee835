"""Roboflow export formats: which reader reads which, and telling them apart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.config import setting
from pipeline.ingest import coco, semantic_masks, yolo
from pipeline.ingest.records import ExportFrame, IngestError

Reader = Callable[[Path, Sequence[str]], list[ExportFrame]]

# Roboflow's own format names (as `version.download(format)` takes them) -> reader.
READERS: dict[str, Reader] = {
    "coco-segmentation": coco.read_coco_export,
    "png-mask-semantic": semantic_masks.read_semantic_export,
    "yolov8": yolo.read_yolo_export,
}
# A file that only an export of that format holds, for `auto` detection.
MARKERS: dict[str, str] = {
    "coco-segmentation": coco.ANNOTATIONS_FILE,
    "png-mask-semantic": semantic_masks.CLASSES_FILE,
    "yolov8": yolo.DATA_FILE,
}


def detect_format(root: Path) -> str:
    """The export format of an unpacked export folder, from the files it holds.

    Raises:
        IngestError: no known format, or files of several formats.
    """
    found = [name for name, marker in MARKERS.items()
             if (root / marker).is_file() or any(root.glob(f"*/{marker}"))]
    if len(found) != 1:
        known = ", ".join(f"{name} ({marker})" for name, marker in MARKERS.items())
        raise IngestError(f"{root}: cannot tell the export format ({'found ' + ', '.join(found) if found else 'none of'} "
                          f"{known}); name it with {setting('data.format')}")
    return found[0]


def read_export(root: Path, export_format: str, classes: Sequence[str]) -> list[ExportFrame]:
    """Reads every frame of an unpacked export.

    Args:
        root: the export folder.
        export_format: a key of :data:`READERS`, or ``auto``.
        classes: output channel names, mapped by name onto the export's classes.
    """
    name = detect_format(root) if export_format == "auto" else export_format
    if name not in READERS:
        raise IngestError(f"unsupported export format {name!r}; supported: {', '.join(READERS)}")
    return READERS[name](root, classes)
