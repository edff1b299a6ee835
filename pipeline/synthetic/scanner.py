"""One frame exactly as ``trus sample`` renders it: the patient's scanner, size, sweep and seeds.

The export writer and the tests both go through :func:`sample_frame`, so tests check
the very frames the generator makes, with their true fan geometry.
"""

from __future__ import annotations

import numpy as np

from pipeline.synthetic.phantom import PhantomFrame, draw_patient, render_phantom
from pipeline.synthetic.variants import DEFAULT, patient_variant


def sweep_position(frame: int, frames_per_patient: int) -> float:
    """Position of a frame in its patient's sweep through the gland, -0.8..0.8 (0 = mid-gland)."""
    return 0.0 if frames_per_patient == 1 else -0.8 + 1.6 * (frame - 1) / (frames_per_patient - 1)


def sample_frame(seed: int, patient: int, frame: int, *, variant: str = DEFAULT.name,
                 size: tuple[int, int] = (1280, 872), frames_per_patient: int = 5, with_gland: bool = True,
                 with_lesion: bool = False) -> PhantomFrame:
    """Renders one frame of a sample export.

    Args:
        seed: the export seed, >= 0.
        patient: patient number, from 1.
        frame: frame number in the patient's sweep, 1..frames_per_patient.
        variant: a scanner variant name, or ``fleet`` (see :mod:`pipeline.synthetic.variants`).
        size: the export's (width, height) px; a variant with its own size overrides it.
        frames_per_patient: frames in the sweep (sets the sweep position).
        with_gland, with_lesion: what the frame shows (a lesion needs the gland).

    Returns:
        The frame, its masks, polygons and true fan (``fan``, ``fan_mask``, ``fan_box``).

    Raises:
        ValueError: an unknown variant, or a lesion without a gland.
    """
    scanner = patient_variant(variant, seed, patient)
    width, height = scanner.size or size
    params = draw_patient(np.random.default_rng([seed, 1, patient]), width, height, scanner)
    return render_phantom(np.random.default_rng([seed, 2, patient, frame]), width, height, with_gland=with_gland,
                          with_lesion=with_lesion, patient=params, sweep=sweep_position(frame, frames_per_patient),
                          label=f"SIM-P{patient:03d} F{frame:02d}", variant=scanner)
