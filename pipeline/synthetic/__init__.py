"""Synthetic TRUS phantom frames, written as a Roboflow "COCO Segmentation" export (`trus sample`).

Not patient data: everything here is rendered from a seed, and says so in its burned-in text.
"""

from pipeline.synthetic.phantom import PhantomFrame, render_phantom
from pipeline.synthetic.roboflow_coco import SampleSpec, write_sample_export

__all__ = ["PhantomFrame", "SampleSpec", "render_phantom", "write_sample_export"]
