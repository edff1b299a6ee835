"""Roboflow file names: recovering the original frame name and the patient.

Roboflow renames every image ``<original name with dots as _>.rf.<hash>.jpg``, where the
hash is 32 hex characters (older exports) or 20 base62 characters (newer ones).
Augmented copies of one frame share the original name and differ in the hash.

Also how the ingest names an export's files: files it ignores (:func:`is_hidden`), and how
messages name a file of an unpacked zip or download (:func:`shown`, :func:`shown_as`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePath

_ROBOFLOW_NAME = re.compile(
    r"^(?P<stem>.+?)(?:_(?P<ext>png|jpe?g|bmp|tiff?|dcm|dicom|gif|webp))?"
    r"\.rf\.(?P<hash>[0-9a-f]{32}|[A-Za-z0-9]{20})\.(?:jpe?g|png)$",
    re.IGNORECASE,
)
_SHOWN_AS: ContextVar[tuple[Path, str] | None] = ContextVar("shown_as", default=None)


@dataclass(frozen=True)
class ExportName:
    """A parsed export file name.

    Attributes:
        original_name: the name before Roboflow (``P007_F03.png``); dots inside the
            original stem cannot be told from underscores and stay underscores.
        digest: Roboflow's hash, empty for files not renamed by Roboflow.
    """

    original_name: str
    digest: str

    @property
    def original_stem(self) -> str:
        """The original name without its extension."""
        return PurePath(self.original_name).stem

    @property
    def frame_id(self) -> str:
        """A stable, unique, file-system-safe id: original stem + 8 hash characters."""
        safe = re.sub(r"[^A-Za-z0-9_-]+", "-", self.original_stem)
        return f"{safe}_{self.digest[:8]}" if self.digest else safe


def parse_export_name(file_name: str) -> ExportName:
    """Parses ``P007_F03_png.rf.<hash>.jpg`` into ``ExportName("P007_F03.png", "<hash>")``.

    Names that Roboflow did not rename are returned unchanged with an empty digest.
    """
    match = _ROBOFLOW_NAME.match(PurePath(file_name).name)
    if match is None:
        return ExportName(PurePath(file_name).name, "")
    ext = match["ext"]
    original = f"{match['stem']}.{ext.lower()}" if ext else match["stem"]
    return ExportName(original, match["hash"])


def patient_of(original_name: str, pattern: str) -> str | None:
    """The patient key from an original file name, by the ``(?P<patient>...)`` group.

    Returns:
        The patient key, or None when the name does not match.
    """
    match = re.search(pattern, original_name)
    return match["patient"] if match and match["patient"] else None


def is_hidden(path: PurePath) -> bool:
    """Whether an export ignores a file or folder: dot-files (``.DS_Store``, ``._x.jpg``) and ``__MACOSX``."""
    return path.name.startswith(".") or path.name == "__MACOSX"


@contextmanager
def shown_as(folder: Path, name: str) -> Iterator[None]:
    """Within the block, :func:`shown` names ``folder`` as ``name`` and its files as ``name: relative/path``.

    For an export unpacked to a temporary folder: messages name the zip (``export.zip:
    train/_annotations.coco.json``) or the Roboflow version, never the folder that is
    deleted afterwards.
    """
    token = _SHOWN_AS.set((folder, name))
    try:
        yield
    finally:
        _SHOWN_AS.reset(token)


def shown(path: Path) -> str:
    """How messages name a file or folder of an export: the path, or, inside :func:`shown_as`, what it stands for."""
    current = _SHOWN_AS.get()
    if current is None or not Path(path).is_relative_to(current[0]):
        return str(path)
    folder, name = current
    relative = Path(path).relative_to(folder).as_posix()
    return name if relative == "." else f"{name}: {relative}"
