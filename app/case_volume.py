"""The case's prostate volume and PSA density from its calipers (no Qt).

The width and height come from the calipers of that name on the transverse frame chosen for
the volume, the length from the sagittal frame's; each caliper is the automatic one from
the gland mask (:func:`pipeline.inference.gland_size.gland_diameters`, the measurement of
``trus measure`` and the pipeline's volume check) unless the user moved it. The volume is
:func:`pipeline.inference.gland_size.ellipsoid_volume_ml` and the PSA density
:func:`pipeline.inference.gland_size.psa_density`: one formula everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.case import FrameWork
from pipeline.inference.gland_size import PSA_DENSITY_THRESHOLD, PsaDensity, ellipsoid_volume_ml, psa_density

DIAMETERS = (("transverse", "width"), ("transverse", "height"), ("sagittal", "length"))
"""(plane, caliper name) of the three diameters, in the order width, height, length."""


@dataclass(frozen=True)
class VolumeFigures:
    """What the Volume box shows.

    Attributes:
        width_mm, height_mm, length_mm: the diameters (mm, > 0), None where missing.
        volume_ml: pi/6 x length x width x height (mL), or None.
        psa: the PSA density with its flag, or None (no PSA, or no volume).
        missing: why the volume is None (a sentence for the user), else None.
    """

    width_mm: float | None
    height_mm: float | None
    length_mm: float | None
    volume_ml: float | None
    psa: PsaDensity | None
    missing: str | None

    def fingerprint(self) -> tuple:
        """The figures to 0.01 (mm, mL, ng/mL), to notice a change after acceptance."""
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 2)

        psa = None if self.psa is None else (rounded(self.psa.psa_ng_per_ml), round(self.psa.threshold, 4))
        return (rounded(self.width_mm), rounded(self.height_mm), rounded(self.length_mm), rounded(self.volume_ml), psa)


def _diameter(work: FrameWork | None, plane: str, name: str) -> tuple[float | None, str | None]:
    """(mm, None), or (None, why not) for one named caliper of the frame chosen for ``plane``."""
    if work is None:
        return None, f"choose a {plane} frame for the volume (Measurements › Use for the volume)"
    caliper = next((c for c in work.calipers if c.name == name), None)
    if caliper is None:
        return None, f"the {plane} frame has no {name} caliper (no gland found; add one named by the plane)"
    spacing = work.calibration.spacing_mm if work.calibration is not None else None
    length = caliper.length_mm(spacing)
    if length is None:
        return None, f"the {plane} frame has no pixel spacing: calibrate it (Tools › Calibrate…)"
    if length <= 0:
        return None, f"the {plane} frame's {name} is 0 mm"
    return length, None


def volume_figures(transverse: FrameWork | None, sagittal: FrameWork | None, psa_ng_per_ml: float | None,
                   psa_threshold: float = PSA_DENSITY_THRESHOLD) -> VolumeFigures:
    """The three diameters, the volume and the PSA density of a case.

    Args:
        transverse, sagittal: the work on the frames chosen for the volume (calipers and
            calibration), or None when not chosen.
        psa_ng_per_ml: serum PSA (ng/mL, >= 0) or None.
        psa_threshold: PSA density threshold, ng/mL/cc (> 0).

    Raises:
        ValueError: a negative or non-finite PSA, or a threshold that is not > 0.
    """
    works = {"transverse": transverse, "sagittal": sagittal}
    found = [_diameter(works[plane], plane, name) for plane, name in DIAMETERS]
    width, height, length = (value for value, _ in found)
    missing = next((why for _, why in found if why is not None), None)
    if missing is not None:
        return VolumeFigures(width, height, length, None, None, missing)
    volume = ellipsoid_volume_ml(length, width, height)
    psa = None if psa_ng_per_ml is None else psa_density(psa_ng_per_ml, volume, psa_threshold)
    return VolumeFigures(width, height, length, volume, psa, None)
