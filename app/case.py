"""A case: the frames of one exam (a folder of frames, or the cine frames of a multi-frame DICOM)
and the work done on each (no Qt).

The session works on one frame at a time; when the user moves to another frame, the open
frame's work (its plane, calipers, edited masks, manual calibration) is kept here as a
:class:`FrameWork` and given back when the user returns. The model's probabilities are kept
for the last few frames only (:data:`KEPT_SEGMENTATIONS`, about 9 MB each at 1280x872), so a
long cine loop does not fill the memory; a frame whose result was dropped is segmented again.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.calipers import FrameCaliper
from pipeline.imaging.calibration import MANUAL, Calibration
from pipeline.imaging.frames import FRAME_SUFFIXES, Frame, FrameReadError, frame_kind, read_frames
from pipeline.inference.predictor import Segmentation

KEPT_SEGMENTATIONS = 8
"""How many frames' model outputs stay in memory (besides the frames used for the volume)."""


@dataclass(frozen=True)
class FrameRef:
    """Where one frame of a case comes from.

    Attributes:
        path: its file.
        index: 0-based frame in that file (a multi-frame DICOM's cine frame), else 0.
        count: how many frames the file holds (>= 1).
    """

    path: Path
    index: int = 0
    count: int = 1

    @property
    def label(self) -> str:
        """The file name, with ``frame i/n`` for a multi-frame file."""
        return self.path.name if self.count == 1 else f"{self.path.name} · frame {self.index + 1}/{self.count}"

    @property
    def stem(self) -> str:
        """A file stem for what is saved from this frame (``name`` or ``name_f003``)."""
        return self.path.stem if self.count == 1 else f"{self.path.stem}_f{self.index + 1:03d}"

    @property
    def image_name(self) -> str:
        """The name of this frame's image in the Roboflow project: the file's name, a cine frame's ``<stem>.png``."""
        return self.path.name if self.count == 1 else f"{self.stem}.png"


@dataclass
class FrameWork:
    """The user's work on one frame, kept while the case is open and saved with it.

    Attributes:
        user_plane: the plane the user chose, or None.
        calipers: the frame's calipers.
        edited: (C, H, W) bool masks the user edited, or None.
        calibration: the frame's calibration as last shown (a manual one is used again when the
            frame is shown; otherwise the chain finds the DICOM or depth-scale spacing again).
        tags: the user's words for the frame (e.g. ``poor view``, ``teaching``), in the order given.
    """

    user_plane: str | None = None
    calipers: list[FrameCaliper] = field(default_factory=list)
    edited: np.ndarray | None = None
    calibration: Calibration | None = None
    tags: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing the user did: automatic calipers alone are the model's, and a calibration that is not manual
        is found again from the frame."""
        return (self.user_plane is None and self.edited is None and not self.tags
                and (self.calibration is None or self.calibration.source != MANUAL)
                and all(caliper.automatic for caliper in self.calipers))


def _count_frames(path: Path) -> int:
    """Frames in a file without decoding its pixels (a DICOM's NumberOfFrames, else 1)."""
    if frame_kind(path) != "dicom":
        return 1
    import pydicom

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # pydicom raises many kinds for a corrupt file
        raise FrameReadError(f"{path}: not a readable DICOM file ({error})") from error
    return max(int(getattr(dataset, "NumberOfFrames", 1) or 1), 1)


def case_frames(path: Path) -> list[FrameRef]:
    """The frames of a case: every frame file in a folder (sorted by name, not recursive) or one file's frames.

    Raises:
        FrameReadError: the path does not exist, a folder holds no frame file, or a DICOM is unreadable.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
        if not files:
            raise FrameReadError(f"{path}: no frame files ({', '.join(FRAME_SUFFIXES)}) in this folder")
    elif path.is_file():
        files = [path]
    else:
        raise FrameReadError(f"{path}: no such file or folder")
    refs: list[FrameRef] = []
    for file in files:
        count = _count_frames(file)
        refs += [FrameRef(file, index, count) for index in range(count)]
    return refs


@dataclass
class Case:
    """The frames of one exam and the work on them.

    Attributes:
        source: the folder or file the case was opened from.
        frames: its frames, in order.
        work: frame number (0-based) -> the user's work on it.
        psa_ng_per_ml: the serum PSA the user entered (ng/mL, >= 0), or None.
        volume_frames: plane (``transverse``, ``sagittal``) -> the frame number measured for the volume.
        accepted_at: ISO 8601 time the user accepted the measurements, or None (not accepted).
        accepted_figures: the (width, height, length, volume, PSA) they accepted, to notice a change.
        case_id: the identifier the user gave the case for reports ("" until given).
        classes: the model's class names, in the channel order of the edited masks (() until saved with a model).
        revision: counts the user's changes (compared with the revision last saved).
    """

    source: Path
    frames: list[FrameRef]
    work: dict[int, FrameWork] = field(default_factory=dict)
    psa_ng_per_ml: float | None = None
    volume_frames: dict[str, int] = field(default_factory=dict)
    accepted_at: str | None = None
    accepted_figures: tuple | None = None
    case_id: str = ""
    classes: tuple[str, ...] = ()
    revision: int = 0
    _pixels: dict[Path, list[Frame]] = field(default_factory=dict, repr=False)
    _segmentations: OrderedDict[int, Segmentation] = field(default_factory=OrderedDict, repr=False)

    def read(self, number: int) -> Frame:
        """Frame ``number``'s pixels; a multi-frame file is decoded once and kept while the case is open.

        Raises:
            IndexError: no such frame. FrameReadError: the file cannot be read.
        """
        ref = self.frames[number]
        if ref.count == 1:
            return next(iter(read_frames(ref.path)))
        if ref.path not in self._pixels:
            self._pixels[ref.path] = list(read_frames(ref.path))
        frames = self._pixels[ref.path]
        if ref.index >= len(frames):
            raise FrameReadError(f"{ref.path}: frame {ref.index + 1} requested, the file has {len(frames)}")
        return frames[ref.index]

    def segmentation(self, number: int) -> Segmentation | None:
        """The kept model output of frame ``number``, or None."""
        if number in self._segmentations:
            self._segmentations.move_to_end(number)
        return self._segmentations.get(number)

    def keep_segmentation(self, number: int, segmentation: Segmentation) -> None:
        """Keeps frame ``number``'s model output, dropping the least recently used beyond
        :data:`KEPT_SEGMENTATIONS` (never a frame used for the volume)."""
        self._segmentations[number] = segmentation
        self._segmentations.move_to_end(number)
        pinned = set(self.volume_frames.values())
        for old in list(self._segmentations):
            if len(self._segmentations) <= KEPT_SEGMENTATIONS + len(pinned):
                break
            if old not in pinned and old != number:
                del self._segmentations[old]

    def forget_segmentations(self) -> None:
        """Drops every kept model output (another model was loaded)."""
        self._segmentations.clear()

    def clear_acceptance(self) -> None:
        """Marks the measurements not accepted (an edit after acceptance); a change only when they were."""
        if self.accepted_at is None and self.accepted_figures is None:
            return
        self.accepted_at = None
        self.accepted_figures = None
        self.revision += 1

    def changed(self) -> None:
        """Counts a change by the user."""
        self.revision += 1


def first_readable_frame(case: Case) -> int:
    """The frame to show first: the first volume frame, else the first frame, else the first one that reads.

    Raises:
        FrameReadError: no frame of the case can be read (the first frame's error).
    """
    preferred = min(case.volume_frames.values(), default=0)
    order = [preferred] + [number for number in range(len(case.frames)) if number != preferred]
    first_error: FrameReadError | None = None
    for number in order:
        try:
            case.read(number)
            return number
        except FrameReadError as error:
            first_error = first_error or error
    assert first_error is not None  # case_frames never returns an empty case
    raise first_error


MAX_TAG_CHARS = 40


def parse_tags(text: str) -> tuple[str, ...]:
    """The tags in a comma-separated text: each stripped of spaces, empty ones dropped, repeats (ignoring case)
    dropped, in the order given.

    Raises:
        ValueError: a tag longer than :data:`MAX_TAG_CHARS` characters.
    """
    tags: list[str] = []
    for tag in (" ".join(part.split()) for part in text.split(",")):
        if len(tag) > MAX_TAG_CHARS:
            raise ValueError(f"a tag may have at most {MAX_TAG_CHARS} characters: {tag[:MAX_TAG_CHARS]}…")
        if tag and tag.casefold() not in (known.casefold() for known in tags):
            tags.append(tag)
    return tuple(tags)
