"""The volume check: each test patient's prostate volume from the model's masks against the truth's.

Per patient, the frames are the transverse frame with the largest truth gland section and
the sagittal frame with the largest truth gland section (the midline one of a sweep); both
volumes are measured on these same frames, so the difference is the segmentation's alone.
The volume is the ellipsoid pi/6 x L x W x H of :mod:`pipeline.inference.gland_size`: width
and height from the transverse gland, length from the sagittal one, as a clinician takes
them. A patient without a transverse or a sagittal frame with a gland is not measured; a
frame where the model finds no gland is *unmeasured* (counted apart, not given an error).

Units: mL when both frames have a pixel spacing; otherwise the same formula on px lengths
(``px3``), whose percentage errors are still right when the two frames share one isotropic
spacing, and which says so. The summary follows Bland and Altman: the bias (mean
difference, model - truth), the limits of agreement (bias +- 1.96 SD of the differences),
in the volume unit and in percent of the truth, and the mean absolute percentage error.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from pipeline.inference.gland_size import Spacing, ellipsoid_volume_ml, gland_diameters

PX3 = "px3"
ML = "mL"


@dataclass(frozen=True)
class PatientFrames:
    """One patient's two measured frames, masks at the original frame size.

    Attributes:
        patient: the patient key.
        transverse_id, sagittal_id: the frames' ids.
        truth_transverse, model_transverse: (H, W) bool gland masks of the transverse frame.
        truth_sagittal, model_sagittal: (H', W') bool gland masks of the sagittal frame.
        transverse_spacing, sagittal_spacing: (x, y) mm per px, or None when unknown.
    """

    patient: str
    transverse_id: str
    sagittal_id: str
    truth_transverse: np.ndarray
    model_transverse: np.ndarray
    truth_sagittal: np.ndarray
    model_sagittal: np.ndarray
    transverse_spacing: Spacing | None
    sagittal_spacing: Spacing | None


def ellipsoid_volume(transverse: np.ndarray, sagittal: np.ndarray, transverse_spacing: Spacing | None,
                     sagittal_spacing: Spacing | None) -> tuple[float, str] | None:
    """The ellipsoid volume of two gland masks and its unit (``mL`` or ``px3``), or None for an empty mask.

    Args:
        transverse, sagittal: (H, W) bool gland masks.
        transverse_spacing, sagittal_spacing: (x, y) mm per px, or None; mL needs both.
    """
    if not transverse.any() or not sagittal.any():
        return None
    in_mm = transverse_spacing is not None and sagittal_spacing is not None
    across = gland_diameters(transverse, transverse_spacing if in_mm else None)
    along = gland_diameters(sagittal, sagittal_spacing if in_mm else None)
    if in_mm:
        return ellipsoid_volume_ml(along.major.length_mm, across.major.length_mm, across.minor.length_mm), ML
    return math.pi / 6.0 * along.major.length_px * across.major.length_px * across.minor.length_px, PX3


def choose_frames(planes: pd.Series, truth_gland_px: pd.Series) -> tuple[str, str] | None:
    """The transverse and sagittal frame ids with the largest truth gland section, or None when a plane has none.

    Args:
        planes: frame id -> ``transverse`` / ``sagittal`` / other, for one patient's frames.
        truth_gland_px: frame id -> truth gland pixels (on the original frame).
    """
    chosen = []
    for plane in ("transverse", "sagittal"):
        candidates = truth_gland_px[(planes == plane) & (truth_gland_px > 0)]
        if candidates.empty:
            return None
        chosen.append(str(candidates.idxmax()))
    return chosen[0], chosen[1]


def patient_row(frames: PatientFrames) -> dict:
    """One patient's volumes: ``truth``, ``model`` (None when the model found no gland), ``unit``, the frames."""
    truth = ellipsoid_volume(frames.truth_transverse, frames.truth_sagittal, frames.transverse_spacing,
                             frames.sagittal_spacing)
    model = ellipsoid_volume(frames.model_transverse, frames.model_sagittal, frames.transverse_spacing,
                             frames.sagittal_spacing)
    if truth is None:
        raise ValueError(f"patient {frames.patient}: the chosen frames have no truth gland")
    return {"patient": frames.patient, "transverse_frame": frames.transverse_id, "sagittal_frame": frames.sagittal_id,
            "unit": truth[1], "truth": truth[0], "model": None if model is None else model[0]}


@dataclass(frozen=True)
class VolumeAgreement:
    """Bland-Altman summary of model against truth volumes.

    Attributes:
        unit: ``mL``, or ``px3`` when some frame had no spacing (then only the percentages
            compare across patients).
        patients: patients with both volumes.
        unmeasured: patients whose chosen frames the model found no gland on.
        not_measurable: test patients without a transverse or a sagittal frame with a gland.
        mean_absolute_percentage_error: mean |model - truth| / truth, percent; None with no patient.
        bias, limits_of_agreement: mean difference and mean +- 1.96 SD, in ``unit``.
        bias_percent, limits_of_agreement_percent: the same on percentage differences.
    """

    unit: str | None
    patients: int
    unmeasured: int
    not_measurable: int
    mean_absolute_percentage_error: float | None
    bias: float | None
    limits_of_agreement: list[float] | None
    bias_percent: float | None
    limits_of_agreement_percent: list[float] | None

    def as_dict(self) -> dict:
        """Field name -> value, JSON-ready."""
        return asdict(self)


def _limits(values: np.ndarray) -> tuple[float, list[float]]:
    """(mean, [mean - 1.96 SD, mean + 1.96 SD]); SD with n - 1 (0 for one value)."""
    mean = float(values.mean())
    spread = 1.96 * float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return mean, [mean - spread, mean + spread]


def agreement(rows: pd.DataFrame, not_measurable: int) -> VolumeAgreement:
    """The Bland-Altman summary of :func:`patient_row` rows.

    Args:
        rows: columns ``unit``, ``truth``, ``model`` (None/NaN: unmeasured).
        not_measurable: patients left out before measuring (no frame of a plane).
    """
    measured = rows[rows["model"].notna()] if len(rows) else rows
    if measured.empty:
        return VolumeAgreement(None, 0, len(rows), not_measurable, None, None, None, None, None)
    units = set(measured["unit"])
    unit = ML if units == {ML} else PX3
    truth, model = measured["truth"].to_numpy(float), measured["model"].to_numpy(float)
    percent = 100.0 * (model - truth) / truth
    bias, limits = _limits(model - truth)
    bias_percent, limits_percent = _limits(percent)
    return VolumeAgreement(unit, len(measured), len(rows) - len(measured), not_measurable,
                           float(np.abs(percent).mean()), bias, limits, bias_percent, limits_percent)


def bland_altman_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The plot's rows: per measured patient ``mean`` of the two volumes, ``difference`` (model - truth),
    ``difference_percent``, the volumes and the unit."""
    measured = rows[rows["model"].notna()].copy()
    measured["mean"] = (measured["truth"] + measured["model"]) / 2.0
    measured["difference"] = measured["model"] - measured["truth"]
    measured["difference_percent"] = 100.0 * measured["difference"] / measured["truth"]
    return measured[["patient", "unit", "truth", "model", "mean", "difference", "difference_percent",
                     "transverse_frame", "sagittal_frame"]]
