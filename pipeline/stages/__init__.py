"""The DVC stage entry points, one module per stage of dvc.yaml (``python -m pipeline.stages.<stage>``).

Each is thin: it reads params.yaml, checks its inputs and calls the libraries; ``runner`` turns
user-fixable errors into one line and a non-zero exit.
"""
