"""``trus sample``: the embedded SYNTHETIC sample, written as a Roboflow COCO Segmentation export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Force, one_line_errors, say


def sample(
    out: Annotated[Path, typer.Option(help="New folder to write the export into.")] = Path("data"),
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives identical files.")] = 0,
    patients: Annotated[int, typer.Option(min=1, help="Synthetic patients.")] = 24,
    frames_per_patient: Annotated[int, typer.Option(min=1, help="Frames per patient, both planes.")] = 5,
    sagittal_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of each patient's frames that are "
                                                     "sagittal (rounded half up; 0.4 of 5: 3 transverse, "
                                                     "2 sagittal).")] = 0.4,
    variant: Annotated[str, typer.Option(help="Scanner variant: default, probe_bottom, wide, wide_bottom, "
                                         "logo_calipers, colour, jpeg, size_800x600, size_1024x768, worst_case, "
                                         "or fleet (one per patient).")] = "default",
    force: Force = False,
) -> None:
    """Write SYNTHETIC TRUS phantoms as a Roboflow COCO Segmentation export (not patient data)."""
    from pipeline.synthetic import SampleSpec, write_sample_export

    with one_line_errors():
        spec = SampleSpec(n_patients=patients, frames_per_patient=frames_per_patient,
                          sagittal_fraction=sagittal_fraction, variant=variant)
        counts = write_sample_export(out, seed, spec, force=force)
    say(f"sample: wrote SYNTHETIC export to {out} (seed {seed}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
