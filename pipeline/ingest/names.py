"""Roboflow file names: recovering the original frame name and the patient.

Roboflow renames every image ``<original name with dots as _>.rf.<hash>.jpg``, where the
hash is 32 hex characters (older exports) or 20 base62 characters (newer ones).
Augmented copies of one frame share the original name and differ in the hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

_ROBOFLOW_NAME = re.compile(
    r"^(?P<stem>.+?)(?:_(?P<ext>png|jpe?g|bmp|tiff?|dcm|dicom|gif|webp))?"
    r"\.rf\.(?P<hash>[0-9a-f]{32}|[A-Za-z0-9]{20})\.(?:jpe?g|png)$",
    re.IGNORECASE,
)


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
