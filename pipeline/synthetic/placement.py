"""Where a patient's gland lies in the fan, in both planes, at its true size.

The gland is never shrunk to fit: its posterior border lies a few mm beyond the rectal wall
(the transducer face, ``r_inner``), pushed deeper while its largest sections (mid-gland
transverse, midline sagittal) would leave the fan; when even that fails, or its anterior
border would lie in the deepest 15 % of the image, the sonographer sets a larger depth
(0.5 cm steps), which lowers the display scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from pipeline.synthetic.anatomy import SAGITTAL, TRANSVERSE, FrameSlice, GlandAnatomy
from pipeline.synthetic.sections import FramePose, gland_section_mm
from pipeline.synthetic.sector import FanGeometry, inside_fan

FAN_MARGIN = 0.03  # every gland outline keeps this fraction of r_outer from the fan's border
POSE_JITTER = (0.005, 0.02)  # frame-to-frame move of the gland: shift (fraction of r_outer, each axis), turn (rad)
_PLACEMENT_MARGIN = 0.05  # the nominal outlines keep this much, so that jittered frames keep FAN_MARGIN
_MAX_DEPTH_CM = 16.0
_DEEPEST_BORDER = 0.85  # the gland's anterior border stays within this fraction of the depth setting


@dataclass(frozen=True)
class GlandPlacement:
    """The gland's nominal pose in each plane.

    Attributes:
        transverse: pose of the transverse sections.
        sagittal: pose of the sagittal sections (the gland's centre further right, so that the
            bladder, cranial, shows on the left).
    """

    transverse: FramePose
    sagittal: FramePose

    def pose(self, plane: str) -> FramePose:
        """The nominal pose of a plane."""
        return self.transverse if plane == TRANSVERSE else self.sagittal


def place_gland(fan: FanGeometry, anatomy: GlandAnatomy, rotation: float, tilt: float, gap_mm: float,
                lateral_mm: float, cranial_room: float) -> tuple[FanGeometry, GlandPlacement]:
    """Places the gland at its true size, deepening the fan's depth setting when it does not fit.

    Args:
        fan: the drawn sector (its ``depth_cm`` may grow).
        anatomy: the patient's gland.
        rotation: in-plane rotation of the transverse sections, rad.
        tilt: in-plane rotation of the sagittal sections, rad.
        gap_mm: the smallest distance from the transducer face to the gland's posterior border, mm.
        lateral_mm: the transverse centre's offset from the fan's axis, mm (positive: image right).
        cranial_room: the sagittal centre's offset to the right of the fan's axis, as a fraction of L
            (halved, then dropped, when the gland would leave the fan).

    Returns:
        The fan (with the depth setting used) and the poses.

    Raises:
        ValueError: the gland fits at no depth setting up to 16 cm.
    """
    depth_cm = fan.depth_cm
    while depth_cm <= _MAX_DEPTH_CM:
        candidate = dataclasses.replace(fan, depth_cm=depth_cm)
        placement = _fit(candidate, anatomy, rotation, tilt, gap_mm, lateral_mm, cranial_room)
        if placement is not None:
            return candidate, placement
        depth_cm += 0.5
    raise ValueError(f"a gland of {anatomy.length_mm} x {anatomy.width_mm} x {anatomy.height_mm} mm does not fit the fan")


def _fit(fan: FanGeometry, anatomy: GlandAnatomy, rotation: float, tilt: float, gap_mm: float, lateral_mm: float,
         cranial_room: float) -> GlandPlacement | None:
    """The shallowest poses (1 mm depth steps) where both largest sections fit the fan, or None."""
    px_per_mm = fan.px_per_cm / 10.0
    margin = _PLACEMENT_MARGIN * fan.r_outer
    at_origin = {plane: FramePose((0.0, 0.0), px_per_mm, turn, fan.direction)
                 for plane, turn in ((TRANSVERSE, rotation), (SAGITTAL, tilt))}
    outlines = {plane: at_origin[plane].to_px(gland_section_mm(anatomy, FrameSlice(plane, "", 0.0)))
                for plane in at_origin}
    # along the fan's axis: how far the outlines reach towards and away from the probe, px
    towards = max(float(-(fan.direction * o[:, 1]).min()) for o in outlines.values())
    away = max(float((fan.direction * o[:, 1]).max()) for o in outlines.values())
    shifts = [cranial_room * anatomy.length_mm * px_per_mm * f for f in (1.0, 0.5, 0.0)]
    depth = fan.r_inner + gap_mm * px_per_mm + towards
    deepest = min(fan.r_outer - margin, fan.r_inner + _DEEPEST_BORDER * (fan.r_outer - fan.r_inner))
    while depth + away <= deepest:
        y = fan.apex_y + fan.direction * depth
        transverse = (fan.apex_x + lateral_mm * px_per_mm, y)
        if inside_fan(outlines[TRANSVERSE] + transverse, fan, margin):
            for shift in shifts:
                sagittal = (fan.apex_x + shift, y)
                if inside_fan(outlines[SAGITTAL] + sagittal, fan, margin):
                    return GlandPlacement(FramePose(transverse, px_per_mm, rotation, fan.direction),
                                          FramePose(sagittal, px_per_mm, tilt, fan.direction))
        depth += px_per_mm
    return None


def jittered_pose(rng: np.random.Generator, nominal: FramePose, fan: FanGeometry) -> FramePose:
    """The pose of one frame: the nominal one moved by the probe's small frame-to-frame moves (:data:`POSE_JITTER`)."""
    shift, turn = POSE_JITTER
    dx, dy = rng.uniform(-shift, shift, 2) * fan.r_outer
    return nominal.moved((float(dx), float(dy)), float(rng.uniform(-turn, turn)))
