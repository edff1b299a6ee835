"""Torch-free image handling shared by the pipeline, the CLI and the app.

Everything here is numpy/OpenCV (and pydicom for DICOM), so a clinician's install
never needs torch.
"""
