"""Stage ``cv_report`` (``cv/dvc.yaml``): the folds' out-of-fold evaluations -> ``reports/cv.json``.

``python -m pipeline.stages.cv_report`` reads ``data.classes`` and the ``cv`` section of
params.yaml, the split file and each fold's ``reports/folds/<k>/per_frame.csv`` (written by
``python -m pipeline.stages.evaluate --fold k``). It checks that the tables are every fold's,
on exactly its validation frames, and writes the report of
:func:`pipeline.evaluation.crossval.cv_report` to ``reports/cv.json`` (DVC metrics),
``reports/cv.md`` (Markdown tables) and ``reports/cv_dice.csv`` (a DVC bar chart).
"""

from __future__ import annotations

import json
import time

from pipeline.config import load_params
from pipeline.evaluation.crossval import check_out_of_fold, check_patients, cv_report
from pipeline.evaluation.crossval_tables import markdown, plot_table
from pipeline.files.atomic import write_csv_atomically, write_json_atomically, write_text_atomically
from pipeline.files.tables import read_table
from pipeline.layout import CV_FILE, CV_PLOT_FILE, CV_TABLE_FILE, PER_FRAME_FILE, SPLIT_FILE, fold_reports_dir
from pipeline.stages.runner import require_file, run_stage


def main() -> None:
    """Pools the folds' tables, bootstraps the intervals and writes the report."""
    params = load_params()
    require_file(SPLIT_FILE, "split")
    tables = {fold: fold_reports_dir(fold) / PER_FRAME_FILE.name for fold in sorted(params.cv.folds)}
    for fold, path in tables.items():
        require_file(path, f"cv/dvc.yaml:evaluate@{fold}")
    per_fold = {fold: read_table(path) for fold, path in tables.items()}
    for fold, path in tables.items():
        check_patients(per_fold[fold], path)
    classes = params.data.classes
    check_out_of_fold(per_fold, json.loads(SPLIT_FILE.read_text()).get("fold_frames", []), classes)
    started = time.perf_counter()
    report = cv_report(per_fold, classes, params.cv.resamples, params.cv.confidence, params.cv.seed)
    write_json_atomically(CV_FILE, report)
    table = markdown(report)
    write_text_atomically(CV_TABLE_FILE, table)
    write_csv_atomically(CV_PLOT_FILE, plot_table(report))
    print(table + f"cv_report: {params.cv.resamples} resamples in {time.perf_counter() - started:.1f} s "
          f"-> {CV_FILE}, {CV_TABLE_FILE}, {CV_PLOT_FILE}")


if __name__ == "__main__":
    run_stage(main)
