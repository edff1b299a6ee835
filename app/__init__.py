"""The clinician's desktop app: open a TRUS frame, see the model's segmentation, save it.

Torch-free: it runs the exported ONNX model through ``pipeline.inference``.
"""
