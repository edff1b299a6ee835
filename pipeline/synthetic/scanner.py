"""One frame exactly as ``trus sample`` renders it: the patient's scanner, size, slice and seeds.

The export writer and the tests both go through :func:`sample_frame`, so tests check
the very frames the generator makes, with their true fan geometry.
"""

from __future__ import annotations

import numpy as np

from pipeline.synthetic.phantom import PhantomFrame, draw_patient, render_phantom
from pipeline.synthetic.plan import patient_exam, planned_slice, shows_lesion
from pipeline.synthetic.variants import DEFAULT, patient_variant


def sample_frame(seed: int, patient: int, frame: int, *, variant: str = DEFAULT.name,
                 size: tuple[int, int] = (1280, 872), frames_per_patient: int = 5, sagittal_fraction: float = 0.4,
                 with_gland: bool = True, with_lesion: bool = False) -> PhantomFrame:
    """Renders one frame of a sample export.

    Args:
        seed: the export seed, >= 0.
        patient: patient number, from 1.
        frame: frame number in the patient's exam, 1..frames_per_patient.
        variant: a scanner variant name, or ``fleet`` (see :mod:`pipeline.synthetic.variants`).
        size: the export's (width, height) px; a variant with its own size overrides it.
        frames_per_patient: frames in the exam (sets the slices, :func:`~pipeline.synthetic.plan.patient_exam`).
        sagittal_fraction: share of sagittal frames in the exam.
        with_gland: the slice cuts the gland (False: the probe misses it).
        with_lesion: the frame shows the patient's lesion; the frame's slice must cut it
            (:func:`lesion_frames`).

    Returns:
        The frame, its masks, polygons, true fan (``fan``, ``fan_mask``, ``fan_box``) and slice.

    Raises:
        ValueError: an unknown variant, a lesion without a gland, or a slice that misses the lesion.
    """
    scanner = patient_variant(variant, seed, patient)
    width, height = scanner.size or size
    exam = patient_exam(seed, patient, frames_per_patient, sagittal_fraction, lesion_patient=with_lesion)
    params = draw_patient(np.random.default_rng([seed, 1, patient]), width, height, scanner, anatomy=exam.anatomy)
    return render_phantom(np.random.default_rng([seed, 2, patient, frame]), width, height, with_gland=with_gland,
                          with_lesion=with_lesion, patient=params, frame_slice=planned_slice(exam, frame, True),
                          label=f"SIM-P{patient:03d} F{frame:02d}", variant=scanner)


def lesion_frames(seed: int, patient: int, frames_per_patient: int = 5, sagittal_fraction: float = 0.4) -> list[int]:
    """The frames (from 1) that show the patient's lesion when they have one (and the probe does not miss the gland)."""
    exam = patient_exam(seed, patient, frames_per_patient, sagittal_fraction, lesion_patient=True)
    return [frame for frame in range(1, frames_per_patient + 1) if shows_lesion(exam, frame)]
