"""Synthetic TRUS phantom frames, written as a Roboflow "COCO Segmentation" export (`trus sample`).

Not patient data: everything here is rendered from a seed, and says so in its burned-in text.
Scanner variants (frame sizes, probe side, field of view, overlays, JPEG noise) are listed
in :data:`VARIANTS`; ``fleet`` mixes them per patient.
"""

from pipeline.synthetic.phantom import PhantomFrame, render_phantom
from pipeline.synthetic.roboflow_coco import SampleSpec, write_sample_export
from pipeline.synthetic.scanner import sample_frame
from pipeline.synthetic.sector import FanGeometry
from pipeline.synthetic.variants import FLEET, VARIANT_NAMES, VARIANTS, Variant, patient_variant

__all__ = ["FLEET", "VARIANTS", "VARIANT_NAMES", "FanGeometry", "PhantomFrame", "SampleSpec", "Variant",
           "patient_variant", "render_phantom", "sample_frame", "write_sample_export"]
