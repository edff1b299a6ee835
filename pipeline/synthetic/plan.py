"""What a synthetic export holds, decided before any rendering: patients, their exams, and each frame's plan.

Every patient has one 3-D gland (:func:`patient_exam`), seen in a transverse sweep (base,
mid-gland, apex) and in sagittal frames (midline, off the midline). The scanner names each
frame ``P{patient:03d}_F{frame:02d}_{plane}.png`` (:func:`original_name`); Roboflow turns
that into ``P007_F03_transverse_png.rf.<hash>.jpg`` (:func:`roboflow_file_name`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np

from pipeline.synthetic.anatomy import (PLANES, FrameSlice, GlandAnatomy, documented_slices, draw_anatomy, exam_slices,
                                        lesion_section, outside_slice)
from pipeline.synthetic.variants import DEFAULT, VARIANT_NAMES

SPLITS = ("train", "valid", "test")
PLANE_IN_NAME = re.compile(r"_(?P<plane>transverse|sagittal)(?:\.[A-Za-z0-9]+)?$")
"""The plane in a sample frame's original name (``P007_F03_transverse.png``), group ``plane``."""
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class SampleSpec:
    """Size and make-up of a synthetic export.

    Attributes:
        n_patients: patients, each an exam of ``frames_per_patient`` frames of one gland.
        frames_per_patient: frames per patient, transverse and sagittal together.
        frame_width: frame width, px (the original scanner's); at least 256.
        frame_height: frame height, px; at least 192.
        lesion_fraction: fraction of patients with one lesion, 0..1 (``round(fraction *
            n_patients)`` of them, drawn from the seed). A frame shows the lesion where its
            slice cuts it; as a sonographer does, a lesion patient's exam records the lesion in
            each plane (usually 2 of 5 frames show it).
        empty_fraction: fraction of all frames where the probe misses the gland (no annotation), 0..1;
            such a frame keeps its plane and lies beyond the apex (transverse) or lateral to
            the gland (sagittal).
        sagittal_fraction: share of each patient's frames that are sagittal, 0..1, rounded half up
            per patient (0.4 of 5 frames: 3 transverse, 2 sagittal).
        split_fractions: Roboflow's random train/valid/test split, per frame (patients straddle splits).
        variant: the scanner, a key of ``VARIANTS`` (``default``: the original one), or
            ``fleet`` (each patient on one of them, drawn from the seed). A variant with
            its own frame size overrides ``frame_width`` and ``frame_height``.
    """

    n_patients: int = 24
    frames_per_patient: int = 5
    frame_width: int = 1280
    frame_height: int = 872
    lesion_fraction: float = 0.4
    empty_fraction: float = 0.06
    sagittal_fraction: float = 0.4
    split_fractions: tuple[float, float, float] = (0.7, 0.2, 0.1)
    variant: str = DEFAULT.name

    def __post_init__(self) -> None:
        if self.n_patients < 1 or self.frames_per_patient < 1 or self.frame_width < 256 or self.frame_height < 192:
            raise ValueError(f"too small a sample (frames must be at least 256x192 px): {self}")
        fractions = (self.lesion_fraction, self.empty_fraction, self.sagittal_fraction, *self.split_fractions)
        if not all(0.0 <= f <= 1.0 for f in fractions) or abs(sum(self.split_fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions must lie in [0, 1] and split_fractions sum to 1: {self}")
        if self.variant not in VARIANT_NAMES:
            raise ValueError(f"unknown sample variant {self.variant!r}; expected one of {', '.join(VARIANT_NAMES)}")


@dataclass(frozen=True)
class PatientExam:
    """One patient's gland and the slices of their frames.

    Attributes:
        anatomy: the gland in 3-D, with the lesion it has if it is a lesion patient (drawn
            for every patient; only lesion patients' frames show it).
        slices: the slice of frame 1, 2, ... (the transverse sweep, then the sagittal frames),
            as planned: a frame where the probe misses the gland is at
            ``outside_slice(plane, anatomy.off_midline_side)`` instead.
    """

    anatomy: GlandAnatomy
    slices: tuple[FrameSlice, ...]


@dataclass(frozen=True)
class FramePlan:
    """What one frame of the export shows and where it goes; known before any rendering.

    Attributes:
        patient: patient number, from 1.
        frame: frame number within the patient's exam, from 1.
        split: one of ``SPLITS``.
        with_gland: the gland is in view (False: no annotation at all).
        with_lesion: a lesion is in view (implies ``with_gland``): the patient has one and the slice cuts it.
        file_name: the Roboflow file name, ``P007_F03_transverse_png.rf.<hash>.jpg``.
        frame_slice: the frame's plane, level and position.
    """

    patient: int
    frame: int
    split: str
    with_gland: bool
    with_lesion: bool
    file_name: str
    frame_slice: FrameSlice

    @property
    def original_name(self) -> str:
        """The scanner's file name before Roboflow, e.g. ``P007_F03_transverse.png``."""
        return original_name(self.patient, self.frame, self.frame_slice.plane)


def original_name(patient: int, frame: int, plane: str) -> str:
    """The scanner's file name of a frame, ``P{patient:03d}_F{frame:02d}_{plane}.png``.

    Raises:
        ValueError: an unknown plane.
    """
    if plane not in PLANES:
        raise ValueError(f"unknown plane {plane!r}; expected one of {', '.join(PLANES)}")
    return f"P{patient:03d}_F{frame:02d}_{plane}.png"


def plane_in_name(name: str) -> str | None:
    """The plane a sample frame's original name gives (``P007_F03_sagittal.png`` -> ``sagittal``), or None."""
    match = PLANE_IN_NAME.search(PurePath(name).name)
    return match["plane"] if match else None


def patient_label(patient: int) -> str:
    """The patient key of a patient number, as the project's default ``data.patient_pattern`` reads it: ``P007``."""
    return f"P{patient:03d}"


def roboflow_file_name(original_name: str, seed: int) -> str:
    """Roboflow's name for an uploaded image: dots become ``_``, then ``.rf.<hash>.jpg``.

    The hash is deterministic in (seed, name): 32 lowercase hex characters for about two
    thirds of names, the newer 20-character base62 style for the rest.
    """
    digest = hashlib.sha256(f"{seed}/{original_name}".encode()).digest()
    if digest[0] % 3 == 0:
        value = int.from_bytes(digest[1:], "big")
        token = "".join(_BASE62[(value // 62**i) % 62] for i in range(20))
    else:
        token = digest[1:17].hex()
    return f"{original_name.replace('.', '_')}.rf.{token}.jpg"


def patient_exam(seed: int, patient: int, frames_per_patient: int = 5, sagittal_fraction: float = 0.4,
                 lesion_patient: bool = False) -> PatientExam:
    """A patient's gland (with its lesion) and frame slices; cheap (no rendering), the same for every scanner.

    Args:
        seed: the export seed, >= 0.
        patient: patient number, from 1.
        frames_per_patient: frames in the exam.
        sagittal_fraction: share of sagittal frames (:attr:`SampleSpec.sagittal_fraction`).
        lesion_patient: the patient has the lesion, so the exam records it in each plane
            (:func:`~pipeline.synthetic.anatomy.documented_slices`); only the frames that then
            show the lesion differ from the exam without it.
    """
    anatomy = draw_anatomy(np.random.default_rng([seed, 5, patient]), with_lesion=True)
    slices = exam_slices(np.random.default_rng([seed, 6, patient]), frames_per_patient, sagittal_fraction,
                         anatomy.off_midline_side)
    return PatientExam(anatomy, tuple(documented_slices(slices, anatomy) if lesion_patient else slices))


def planned_slice(exam: PatientExam, frame: int, with_gland: bool) -> FrameSlice:
    """The slice of frame ``frame`` (from 1): as planned, or outside the gland when the probe misses it."""
    planned = exam.slices[frame - 1]
    return planned if with_gland else outside_slice(planned.plane, exam.anatomy.off_midline_side)


def shows_lesion(exam: PatientExam, frame: int) -> bool:
    """Whether frame ``frame``'s planned slice cuts the patient's lesion (for a lesion patient, a frame that shows it)."""
    return lesion_section(exam.anatomy, exam.slices[frame - 1]) is not None


def plan_export(seed: int, spec: SampleSpec = SampleSpec()) -> list[FramePlan]:
    """Draws which frames miss the gland, which patients have a lesion, and which split each frame lands in.

    Args:
        seed: non-negative export seed.
        spec: export size and fractions.

    Returns:
        Every frame once, in Roboflow's (shuffled) listing order.
    """
    rng = np.random.default_rng([seed, 0])
    frames = [(p, f) for p in range(1, spec.n_patients + 1) for f in range(1, spec.frames_per_patient + 1)]
    n = len(frames)
    empty = set(rng.choice(n, round(spec.empty_fraction * n), replace=False).tolist())
    lesion_patients = set((rng.choice(spec.n_patients, round(spec.lesion_fraction * spec.n_patients), replace=False)
                           + 1).tolist())
    order = rng.permutation(n).tolist()
    n_train, n_valid = round(spec.split_fractions[0] * n), round(spec.split_fractions[1] * n)
    split_of = {i: SPLITS[(k >= n_train) + (k >= n_train + n_valid)] for k, i in enumerate(order)}
    exams = {p: patient_exam(seed, p, spec.frames_per_patient, spec.sagittal_fraction, p in lesion_patients)
             for p in range(1, spec.n_patients + 1)}
    plans = []
    for i in order:
        patient, frame = frames[i]
        cut = planned_slice(exams[patient], frame, i not in empty)
        lesion = i not in empty and patient in lesion_patients and shows_lesion(exams[patient], frame)
        name = original_name(patient, frame, cut.plane)
        plans.append(FramePlan(patient, frame, split_of[i], i not in empty, lesion, roboflow_file_name(name, seed), cut))
    return plans
