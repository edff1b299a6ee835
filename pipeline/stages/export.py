"""Stage ``export``: the trained checkpoint -> ``models/model.onnx`` with its whole contract.

``python -m pipeline.stages.export`` reads ``data.classes`` and the ``preprocess``, ``model``,
``inference`` and ``export`` sections of params.yaml. A checkpoint with a plane head (its
resolved ``model.plane_head``) gives the model a ``plane`` output and the contract its
``plane_classes``. ONNX Runtime must agree with PyTorch on the first test frames within
``export.parity_atol``, or nothing is written (see :mod:`pipeline.training.onnx_export`).
The review flag's threshold is calibrated on the validation frames
(:mod:`pipeline.evaluation.review_calibration`) and stored in the contract. Then the INT8
model (``export.int8``, :mod:`pipeline.training.int8_export`): ``models/int8/model.int8.onnx`` if
it passes its gate on the test frames, and ``reports/int8.json`` either way.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from pipeline.config import load_params
from pipeline.evaluation.review_calibration import calibrated_review, describe_review
from pipeline.files.tables import read_table
from pipeline.imaging.frames import read_frame
from pipeline.files.atomic import write_json_atomically
from pipeline.layout import (CHECKPOINT_FILE, FRAMES_DIR, IMAGES, INT8_FILE, INT8_REPORT, METRICS_FILE, MODEL_FILE,
                             PROCESSED_DIR, PROCESSED_MANIFEST, SOURCE_INFO, SPLIT_FILE)
from pipeline.stages.runner import require_file, run_stage
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.int8_export import describe, export_int8
from pipeline.training.onnx_export import build_contract, export_checked

PARITY_FRAMES = 4


def main() -> None:
    """Exports, parity-checks and moves the model into place."""
    params = load_params()
    for path, stage in ((CHECKPOINT_FILE, "train"), (METRICS_FILE, "evaluate"), (SPLIT_FILE, "split"),
                        (FRAMES_DIR / SOURCE_INFO, "pull")):
        require_file(path, stage)
    model, info = load_checkpoint(CHECKPOINT_FILE)
    contract = build_contract(params, json.loads(METRICS_FILE.read_text()),
                              json.loads((FRAMES_DIR / SOURCE_INFO).read_text()), info["model"].plane_head is True)
    split = json.loads(SPLIT_FILE.read_text())["frames"]
    table = read_table(PROCESSED_DIR / PROCESSED_MANIFEST).set_index("frame_id")
    review = calibrated_review(model, list(split["val"]), table, params)
    contract = replace(contract, review=review)
    test_ids = split["test"][:PARITY_FRAMES]
    images = np.stack([read_frame(PROCESSED_DIR / IMAGES / f"{frame_id}.png").gray for frame_id in test_ids])
    error = export_checked(model, contract, params.export.opset, images, params.export.parity_atol, MODEL_FILE)
    size_mb = MODEL_FILE.stat().st_size / 1e6
    outputs = "probabilities and plane" if contract.plane_classes else "probabilities"
    print(f"export: {MODEL_FILE} ({size_mb:.1f} MB, opset {params.export.opset}, outputs: {outputs}); "
          f"max |ORT - PyTorch| = {error:.1e} on {len(images)} test frames")
    print(f"export: {describe_review(review)}")
    report = export_int8(MODEL_FILE, INT8_FILE, contract, params, split["train"], split["test"], table)
    write_json_atomically(INT8_REPORT, report)
    for line in describe(report, INT8_FILE):
        print(f"export: {line}")


if __name__ == "__main__":
    run_stage(main)
