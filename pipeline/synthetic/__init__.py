"""Synthetic TRUS phantom frames, written as a Roboflow "COCO Segmentation" export (`trus sample`).

Not patient data: everything here is rendered from a seed, and says so in its burned-in text.
Each synthetic patient has one 3-D gland (:mod:`pipeline.synthetic.anatomy`), seen in
transverse and sagittal frames; the export carries each frame's plane in its name
(``P007_F03_transverse.png``) and in ``trus_sample_frames.csv``, and each patient's true gland
size in ``trus_sample_patients.csv`` (:mod:`pipeline.synthetic.manifests`). Scanner variants
(frame sizes, probe side, field of view, overlays, JPEG noise) are listed in :data:`VARIANTS`;
``fleet`` mixes them per patient.
"""

from pipeline.synthetic.anatomy import PLANES, SAGITTAL, TRANSVERSE, FrameSlice, GlandAnatomy
from pipeline.synthetic.manifests import FRAMES_MANIFEST, PATIENTS_MANIFEST, read_sample_manifests
from pipeline.synthetic.phantom import PhantomFrame, render_phantom
from pipeline.synthetic.plan import SampleSpec, original_name, patient_exam, plane_in_name
from pipeline.synthetic.roboflow_coco import write_sample_export
from pipeline.synthetic.scanner import lesion_frames, sample_frame
from pipeline.synthetic.sector import FanGeometry
from pipeline.synthetic.variants import FLEET, VARIANT_NAMES, VARIANTS, Variant, patient_variant

__all__ = ["FLEET", "FRAMES_MANIFEST", "PATIENTS_MANIFEST", "PLANES", "SAGITTAL", "TRANSVERSE", "VARIANTS",
           "VARIANT_NAMES", "FanGeometry", "FrameSlice", "GlandAnatomy", "PhantomFrame", "SampleSpec", "Variant",
           "lesion_frames", "original_name", "patient_exam", "patient_variant", "plane_in_name",
           "read_sample_manifests", "render_phantom", "sample_frame", "write_sample_export"]
