"""Torch-free inference: the ONNX model contract, the ONNX Runtime predictor, measurements.

Shared by the ``trus segment`` CLI and the desktop app; imports no torch.
"""
