"""``trus compare``: two evaluations of the same frames, the difference with a paired patient-bootstrap interval."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Force, fail, one_line_errors, say


def compare(
    baseline: Annotated[Path, typer.Argument(help="The reference: a per_frame.csv, or a folds folder "
                                             "(reports/folds: <k>/per_frame.csv).")],
    candidate: Annotated[Path, typer.Argument(help="The setting to judge, on the same frames.")],
    resamples: Annotated[int, typer.Option(min=1, help="Bootstrap resamples of the patients.")] = 2000,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="The intervals' coverage.")] = 0.95,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draws; the same seed gives the same report.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON to this new "
                                                  "file.")] = None,
    force: Force = False,
) -> None:
    """Compare two evaluations of the same frames: candidate - baseline, per class and metric.

    Both must score the same frames of the same patients: two cross-validations
    of one split (their reports/folds), or two models' per_frame.csv on the same
    test patients. One bootstrap over patients scores both on each resample, so
    a difference most patients share shows even where the two reports' own
    intervals overlap. The verdict is "better" or "worse" when the interval
    leaves out 0, "unclear" when it holds 0.
    """
    with one_line_errors():
        from pipeline.evaluation.paired import check_paired, compare as compare_evaluations, markdown, read_evaluation

        if json_out is not None:
            _check_json_target(json_out, force)
        names = (str(baseline), str(candidate))
        tables = read_evaluation(baseline), read_evaluation(candidate)
        classes = check_paired(*tables, names)
        report = compare_evaluations(*tables, classes, resamples, confidence, seed)
        typer.echo(markdown(report, names), nl=False)
        if json_out is not None:
            from pipeline.files.atomic import write_json_atomically

            write_json_atomically(json_out, {"baseline": names[0], "candidate": names[1], **report})
            say(f"compare: report -> {json_out}")


def _check_json_target(path: Path, force: bool) -> None:
    """Refuses a ``--json`` path that exists, unless ``--force`` and it is an earlier report of this command."""
    if not path.exists():
        if not path.parent.is_dir():
            raise fail(f"{path}: its folder {path.parent} does not exist")
        return
    if not force:
        raise fail(f"{path} exists; choose a new file, or add --force to replace an earlier trus compare report")
    try:
        earlier = json.loads(path.read_text())
        ours = isinstance(earlier, dict) and earlier.get("bootstrap", {}).get("paired") is True
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise fail(f"{path} is not a trus compare report; it is left as it is (choose a new file)")
