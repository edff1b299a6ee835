"""Stage ``ood``: the deployed model on sample frames of scanner variants that training never saw.

``python -m pipeline.stages.ood`` reads the ``ood`` section of params.yaml, ``models/model.onnx``
and the in-distribution test summary in ``reports/metrics.json``. For each of ``ood.variants``
it renders ``ood.patients`` x ``ood.frames_per_patient`` synthetic frames from ``ood.seed`` into
a temporary folder (removed afterwards), segments them as the app does and scores them, with
the plane accuracy for a model with a plane output (the planes from the file names by
``data.plane_pattern``; see :mod:`pipeline.evaluation.ood`). It writes ``reports/ood.json`` (DVC metrics),
``reports/ood_dice.csv`` (a DVC bar chart of the Dice per variant) and ``reports/ood_per_frame.csv`` (every
variant's rows, as the evaluate stage's ``per_frame.csv`` with a ``variant`` column first).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from pipeline.config import load_params
from pipeline.evaluation.ood import check_ood_request, ood_report, plot_table, run_variant
from pipeline.files.atomic import write_csv_atomically, write_json_atomically
from pipeline.inference.predictor import Segmenter
from pipeline.layout import METRICS_FILE, MODEL_FILE, OOD_FILE, OOD_PER_FRAME_FILE, OOD_PLOT_FILE
from pipeline.stages.runner import require_file, run_stage
from pipeline.synthetic import SampleSpec


def _class_line(name: str, scores: dict) -> str:
    """``gland Dice 0.912 (-0.049)``: a class's Dice and, for a variant, its difference to the test's."""
    dice, change = scores.get("dice"), scores.get("dice_minus_test")
    return f"{name} Dice {'n/a' if dice is None else f'{dice:.3f}'}" + ("" if change is None else f" ({change:+.3f})")


def _plane_line(scores: dict) -> str:
    """``, plane accuracy 0.875 on 8 frames`` for a model with a plane output, else nothing."""
    accuracy, frames = scores.get("plane_accuracy"), scores.get("plane_frames")
    if frames is None:
        return ""
    return f", plane accuracy {'n/a' if accuracy is None else f'{accuracy:.3f}'} on {frames} frames"


def main() -> None:
    """Scores the model on every variant and writes the report and the plot data."""
    all_params = load_params()
    params, plane_pattern = all_params.ood, all_params.data.plane_pattern
    for path, stage in ((MODEL_FILE, "export"), (METRICS_FILE, "evaluate")):
        require_file(path, stage)
    segmenter = Segmenter(MODEL_FILE, precision="fp32")  # the float model, as evaluated: the same on every machine
    classes = segmenter.classes
    check_ood_request(params.variants, classes, MODEL_FILE)
    reference = json.loads(METRICS_FILE.read_text()).get("test", {})
    spec = SampleSpec(n_patients=params.patients, frames_per_patient=params.frames_per_patient)
    started, runs = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="trus-ood-") as work_dir:
        for variant in params.variants:
            run = run_variant(segmenter, variant, params.seed, spec, Path(work_dir), plane_pattern)
            runs.append(run)
            print(f"ood: {variant}: {run.per_frame['frame_id'].nunique()} frames rendered in {run.render_s:.1f} s, "
                  f"segmented and scored in {run.segment_s:.1f} s")
    settings = {"model": str(MODEL_FILE), "threshold": segmenter.contract.threshold, "seed": params.seed,
                "patients": params.patients, "frames_per_patient": params.frames_per_patient}
    report = ood_report(runs, classes, reference, settings)
    write_json_atomically(OOD_FILE, report)
    write_csv_atomically(OOD_PLOT_FILE, plot_table(report, classes))
    per_frame = pd.concat([run.per_frame.assign(variant=run.variant) for run in runs], ignore_index=True)
    write_csv_atomically(OOD_PER_FRAME_FILE, per_frame[["variant", *runs[0].per_frame.columns]])
    print("ood: test (in distribution): " + ", ".join(_class_line(name, report["in_distribution"][name])
                                                      for name in classes))
    for variant, scores in report["variants"].items():
        print(f"ood: {variant}: " + ", ".join(_class_line(name, scores[name]) for name in classes)
              + _plane_line(scores))
    print(f"ood: {len(runs)} variants in {time.perf_counter() - started:.0f} s -> {OOD_FILE}, {OOD_PLOT_FILE}, "
          f"{OOD_PER_FRAME_FILE}")


if __name__ == "__main__":
    run_stage(main)
