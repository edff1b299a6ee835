"""A clinician's corrected masks of one frame, checked on creation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class CorrectionsError(ValueError):
    """Corrections that cannot be written or read; the message names the frame or file and the problem."""


def check_file_name(file_name: object, where: str) -> str:
    """``file_name`` if it is a plain image file name (no folder, not hidden, no control character).

    Raises:
        CorrectionsError: naming ``where`` and what is wrong.
    """
    if not isinstance(file_name, str) or not file_name.strip():
        raise CorrectionsError(f"{where}: the file name must be a non-empty text, got {file_name!r}")
    if any(mark in file_name for mark in ("/", "\\")) or file_name.startswith(".") or \
            any(ord(char) < 32 for char in file_name) or file_name != file_name.strip():
        raise CorrectionsError(f"{where}: {file_name!r} is not a plain image file name (no folder, no leading dot, "
                               "no control characters or surrounding spaces)")
    return file_name


@dataclass(frozen=True)
class CorrectedFrame:
    """One frame's masks after a clinician's correction.

    Attributes:
        file_name: the frame's image file name as it is in the Roboflow project
            (``P007_F03.png``); a Roboflow export name (``P007_F03_png.rf.<hash>.jpg``) is
            also accepted: the upload looks its original name up too.
        masks: (C, H, W) bool, one mask per class, in the original frame's pixel grid
            (H, W the image's height and width, px). 0/1 integer masks are converted to bool.
        classes: the C class names, in channel order (``("gland", "lesion")``), as the
            Roboflow project names them.

    Raises:
        CorrectionsError: a bad file name, masks that are not (C, H, W) 0/1 values, or
            classes that are not C distinct non-empty names.
    """

    file_name: str
    masks: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        check_file_name(self.file_name, "corrected frame")
        masks = np.asarray(self.masks)
        if masks.ndim != 3 or min(masks.shape) < 1:
            raise CorrectionsError(f"{self.file_name}: masks must be (classes, height, width), got shape {masks.shape}")
        if masks.dtype != bool:
            if not (np.issubdtype(masks.dtype, np.integer) and np.isin(masks, (0, 1)).all()):
                raise CorrectionsError(f"{self.file_name}: masks must be bool (or 0/1 integers), got {masks.dtype}")
            masks = masks.astype(bool)
        classes = tuple(self.classes)
        if len(classes) != masks.shape[0]:
            raise CorrectionsError(f"{self.file_name}: {masks.shape[0]} mask(s) but {len(classes)} class name(s) "
                                   f"{list(classes)}")
        if any(not isinstance(name, str) or not name.strip() for name in classes) or len(set(classes)) != len(classes):
            raise CorrectionsError(f"{self.file_name}: class names must be distinct non-empty texts, got {list(classes)}")
        object.__setattr__(self, "masks", masks)
        object.__setattr__(self, "classes", classes)

    @property
    def height(self) -> int:
        """Image height, px."""
        return int(self.masks.shape[1])

    @property
    def width(self) -> int:
        """Image width, px."""
        return int(self.masks.shape[2])
