"""Roboflow export formats: which reader reads which, telling them apart, and finding the export in a folder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.config import setting
from pipeline.ingest import coco, semantic_masks, yolo
from pipeline.ingest.names import is_hidden, shown
from pipeline.ingest.records import ExportContents, IngestError

Reader = Callable[[Path, Sequence[str]], ExportContents]

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


# Files that sit in a split folder itself (a YOLO split holds images/ and labels/ instead).
SPLIT_MARKERS = (coco.ANNOTATIONS_FILE, semantic_masks.CLASSES_FILE)


def is_split_folder(folder: Path) -> bool:
    """Whether ``folder`` is one split of an export (train/, valid/, test/ of any format)."""
    return any((folder / marker).is_file() for marker in SPLIT_MARKERS) or (folder / "images").is_dir()


def unwrap(root: Path) -> Path:
    """The folder that holds the export: ``root``, or the folder wrapping it (repeatedly).

    "Compress folder" zips an export as ``export.zip/my-export/train/...``. ``root`` is such a
    wrapper when it holds no export file itself (``data.yaml``, ``_annotations.coco.json``,
    ``_classes.csv``) and exactly one folder, which is not a split folder (an export of one
    split, ``train/`` alone, stays as it is); ``__MACOSX`` and dot-files are set aside, and
    other files beside the folder (a README, a frames manifest) are not part of the export.
    """
    while root.is_dir():
        folders = [path for path in root.iterdir() if path.is_dir() and not is_hidden(path)]
        markers = any((root / marker).is_file() for marker in MARKERS.values())
        if markers or len(folders) != 1 or is_split_folder(folders[0]):
            break
        root = folders[0]
    return root


def detect_format(root: Path) -> str:
    """The export format of an unpacked export folder, from the files it holds.

    Raises:
        IngestError: no known format, or files of several formats.
    """
    found = [name for name, marker in MARKERS.items()
             if (root / marker).is_file() or any(root.glob(f"*/{marker}"))]
    if len(found) != 1:
        known = ", ".join(f"{name} ({marker})" for name, marker in MARKERS.items())
        raise IngestError(f"{shown(root)}: cannot tell the export format ({'found ' + ', '.join(found) if found else 'none of'} "
                          f"{known}); name it with {setting('data.format')}")
    return found[0]


def read_export(root: Path, export_format: str, classes: Sequence[str]) -> ExportContents:
    """Reads every frame of an unpacked export, and the reader's findings.

    Args:
        root: the export folder.
        export_format: a key of :data:`READERS`, or ``auto``.
        classes: output channel names, mapped by name onto the export's classes.

    Raises:
        IngestError: an unknown format, or an export the reader cannot read.
    """
    name = detect_format(root) if export_format == "auto" else export_format
    if name not in READERS:
        raise IngestError(f"unsupported export format {name!r}; supported: {', '.join(READERS)}")
    return READERS[name](root, classes)
