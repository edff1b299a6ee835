"""Which plane a frame shows, transverse or sagittal, as the data tells it.

A TRUS exam has transverse views (across the gland: its width and antero-posterior height)
and sagittal views (along it: its length). The data can say which one a frame is in three
ways, taken in this order by the pull stage (:func:`resolve_plane`):

1. a Roboflow tag on the image (COCO exports carry an image's tags in
   ``images[i].extra.user_tags``): ``transverse`` or ``sagittal``, or a synonym;
2. the ``plane`` column of a ``trus frames`` manifest (``data.frames_manifest``);
3. the ``plane`` group of ``data.plane_pattern``, a regular expression on the original file
   name (the sample's ``P007_F03_transverse.png`` matches the default).

A frame none of them names has an unknown plane (``""``); the model's plane output, where
there is one, fills it in later. Synonyms (any case): ``transverse``, ``trans``, ``axial``,
``tra``; ``sagittal``, ``sag``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

PLANES = ("transverse", "sagittal")
UNKNOWN = ""
DEFAULT_PLANE_PATTERN = r"(?i)(?:^|[_\-. ])(?P<plane>transverse|sagittal|trans|sag|axial)(?=[_\-. ]|$)"
"""``data.plane_pattern``'s default: a plane word between separators in the file name."""
SOURCES = ("roboflow_tag", "frames_manifest", "file_name")
_SYNONYMS = {"transverse": "transverse", "trans": "transverse", "axial": "transverse", "tra": "transverse",
             "sagittal": "sagittal", "sag": "sagittal"}

log = logging.getLogger(__name__)


def normalise_plane(value: object) -> str | None:
    """``transverse`` or ``sagittal`` for a plane name or synonym (any case, spaces trimmed), else None."""
    if not isinstance(value, str):
        return None
    return _SYNONYMS.get(value.strip().lower())


def plane_from_tags(tags: Iterable[str], where: str = "") -> str | None:
    """The plane the tags name, or None when none does or they name both.

    Args:
        tags: an image's Roboflow tags (other tags are ignored).
        where: the image, for the warning about conflicting tags.
    """
    named = {plane for plane in map(normalise_plane, tags) if plane is not None}
    if len(named) > 1:
        log.warning("%s: tagged both transverse and sagittal; the tags are not used for its plane", where)
        return None
    return named.pop() if named else None


def plane_from_name(original_name: str, pattern: str | None) -> str | None:
    """The plane the ``plane`` group of ``pattern`` finds in a file name (``re.search``), or None.

    Args:
        original_name: the scanner's file name, e.g. ``P007_F03_transverse.png``.
        pattern: ``data.plane_pattern`` (with a ``(?P<plane>...)`` group), or None (off).
    """
    if pattern is None:
        return None
    match = re.search(pattern, original_name)
    return normalise_plane(match.group("plane")) if match else None


def resolve_plane(tags: Iterable[str], manifest_plane: object, original_name: str,
                  pattern: str | None) -> tuple[str, str]:
    """A frame's plane and where it came from, in the order tag, frames manifest, file name.

    Args:
        tags: the image's Roboflow tags.
        manifest_plane: the frames manifest's ``plane`` value for the frame, or None / NaN / "".
        original_name: the scanner's file name.
        pattern: ``data.plane_pattern`` or None.

    Returns:
        (plane, source): ``transverse`` or ``sagittal`` and one of :data:`SOURCES`, or
        (``""``, ``""``) when the data does not say.
    """
    candidates = ((plane_from_tags(tags, original_name), SOURCES[0]), (normalise_plane(manifest_plane), SOURCES[1]),
                  (plane_from_name(original_name, pattern), SOURCES[2]))
    return next(((plane, source) for plane, source in candidates if plane is not None), (UNKNOWN, UNKNOWN))


def check_plane_pattern(pattern: str | None) -> str | None:
    """The problem with ``data.plane_pattern``, or None when it is null or a regex with a ``plane`` group."""
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        return f"is not a regular expression ({error})"
    return None if "plane" in compiled.groupindex else "needs a named group (?P<plane>...)"
