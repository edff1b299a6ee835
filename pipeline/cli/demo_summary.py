"""Prints what ``make demo`` produced and what to do next."""

from __future__ import annotations

import json

from pipeline.evaluation.scoring import describe
from pipeline.layout import (INT8_FILE, INT8_REPORT, METRICS_FILE, MODEL_FILE, OVERLAYS_DIR, PER_FRAME_FILE,
                             PER_FRAME_RAW_FILE)
from pipeline.training.int8_export import describe as describe_int8


def main() -> None:
    """Prints the outputs, the test metrics and the next commands."""
    metrics = json.loads(METRICS_FILE.read_text())
    print("\nDemo finished (model trained on SYNTHETIC phantoms; not for clinical use).")
    for name, scores in metrics["test"].items():
        print(f"  test {name:>8}: {describe(scores)}")
    print(f"  test    score: {metrics['score']:.3f} ({metrics['score_raw']:.3f} without post-processing)")
    print(f"  model      {MODEL_FILE}\n  metrics    {METRICS_FILE}\n  per frame  {PER_FRAME_FILE}"
          f" ({PER_FRAME_RAW_FILE.name} without post-processing)\n"
          f"  overlays   {OVERLAYS_DIR}/  and  dvc plots show  (-> dvc_plots/index.html)")
    if INT8_REPORT.is_file():
        for line in describe_int8(json.loads(INT8_REPORT.read_text()), INT8_FILE):
            print(f"  {line}")
    print("Next:\n  .venv/bin/python -m app --model models/model.onnx      # the clinician's app\n"
          "  .venv/bin/trus segment data/test --model models/model.onnx --out segmentations\n"
          "  .venv/bin/dvc exp show                                  # compare experiments\n"
          "  git checkout params.yaml                                 # back to the product defaults")


if __name__ == "__main__":
    main()
