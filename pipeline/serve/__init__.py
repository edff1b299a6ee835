"""``trus serve``: the segmentation service (FastAPI on uvicorn) and its browser gallery.

The same torch-free runtime as the app and ``trus segment`` (:class:`pipeline.inference.predictor.Segmenter`,
with its choice between the INT8 and fp32 models), and the same per-frame code path
(:mod:`pipeline.inference.frame_outputs`), so one frame gives the same mask everywhere.
"""
