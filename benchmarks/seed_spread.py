"""How much one training recipe's figures move with its seed: several DVC experiments' reports side by side.

One demo training is one draw: its weights, batches, windows and augmentations all follow ``train.seed``. This
script puts the test figures (``reports/metrics.json``) and the out-of-distribution figures (``reports/ood.json``,
``reports/ood_per_frame.csv``) of several experiments side by side, one column each, with their mean, standard
deviation, smallest and largest value. Rows, per class in the test report and per ``ood`` variant: the Dice and
the frames given a class they do not hold (``false_positive_frames``); per variant also the gland Dice minus the
experiment's own test gland Dice, and the gland Dice over the frames that show a gland. The last row counts the
variants whose gland Dice is within ``--allowance`` of that experiment's test gland Dice (issue 10's target: 0.05).

Run the recipe with several seeds as experiments, then name them:

    dvc exp run --queue -n seed1 <the recipe's -S params> -S train.seed=1    # and seed2, seed3 ...
    dvc queue start && dvc queue status
    .venv/bin/python benchmarks/seed_spread.py seed0 seed1 seed2 seed3

Each experiment's files are read from its own git commit (the reports are DVC metrics and outputs with ``cache:
false``, which DVC commits with the experiment, and its params.yaml gives the variants' order); the working tree
is not touched.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import dvc.api
import pandas as pd
import yaml
from dvc.exceptions import DvcException

TEST_REPORT = "reports/metrics.json"
OOD_REPORT = "reports/ood.json"
OOD_PER_FRAME = "reports/ood_per_frame.csv"
GLAND = "gland"
ALLOWANCE = 0.05  # issue 10: every variant's gland Dice within 0.05 of the in-distribution test Dice


class ExperimentError(ValueError):
    """An experiment that cannot be found, or whose reports are missing or malformed."""


def experiment_revisions(names: list[str], repo: Path) -> dict[str, str]:
    """Each experiment name's git commit, from ``dvc exp show`` of the repository's HEAD.

    Raises:
        ExperimentError: a name is not among the repository's experiments (the message lists those it has).
    """
    try:
        rows = dvc.api.exp_show(repo=str(repo))
    except DvcException as error:
        raise ExperimentError(f"{repo}: cannot list its DVC experiments; is it a DVC project in git? "
                              f"({error})") from error
    known = {row["Experiment"]: row["rev"] for row in rows if row.get("Experiment")}
    missing = [name for name in names if name not in known]
    if missing:
        raise ExperimentError(f"{repo}: no experiment named {', '.join(missing)} "
                              f"(experiments of HEAD: {', '.join(sorted(known)) or 'none'})")
    return {name: known[name] for name in names}


def committed_text(repo: Path, revision: str, path: str) -> str:
    """A file's text as committed at ``revision`` (``git show``).

    Raises:
        ExperimentError: the commit lacks the file.
    """
    shown = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=repo, capture_output=True, text=True)
    if shown.returncode != 0:
        raise ExperimentError(f"{path} at {revision}: not in the commit ({shown.stderr.strip()})")
    return shown.stdout


def read_report(repo: Path, revision: str, path: str) -> dict:
    """A JSON report as committed at ``revision``, parsed.

    Raises:
        ExperimentError: the commit lacks the file, or it is not a JSON object.
    """
    try:
        report = json.loads(committed_text(repo, revision, path))
    except json.JSONDecodeError as error:
        raise ExperimentError(f"{path} at {revision}: not JSON ({error})") from error
    if not isinstance(report, dict):
        raise ExperimentError(f"{path} at {revision}: not a JSON object")
    return report


def gland_dice_where_present(per_frame: pd.DataFrame) -> dict[str, float]:
    """Per variant, the mean gland Dice over its frames whose truth holds a gland: the outline's quality, without
    the glands drawn on frames that have none.

    Args:
        per_frame: ``reports/ood_per_frame.csv``: one row per variant, frame and class with ``variant``, ``class``,
            ``dice`` (0..1) and ``truth_px``.

    Raises:
        ExperimentError: a column is missing.
    """
    missing = {"variant", "class", "dice", "truth_px"} - set(per_frame.columns)
    if missing:
        raise ExperimentError(f"{OOD_PER_FRAME}: no column {', '.join(sorted(missing))}")
    present = per_frame[(per_frame["class"] == GLAND) & (per_frame["truth_px"] > 0)]
    means = present.groupby("variant", sort=False)["dice"].mean()
    return {str(variant): float(dice) for variant, dice in means.items()}


def variant_order(params_text: str, reported: list[str]) -> list[str]:
    """The reported variants in the experiment's ``ood.variants`` order (``default``, the control, first there),
    then any the params do not list, in the report's order.

    Args:
        params_text: the experiment's params.yaml; one without an ``ood.variants`` list leaves the report's order.
        reported: the variants of its ``reports/ood.json``.
    """
    params = yaml.safe_load(params_text) or {}
    listed = (params.get("ood") or {}).get("variants") if isinstance(params, dict) else None
    first = [name for name in listed if name in reported] if isinstance(listed, list) else []
    return first + [name for name in reported if name not in first]


def revision_figures(repo: Path, revision: str, allowance: float = ALLOWANCE) -> dict[str, float]:
    """:func:`experiment_figures` of the reports committed at ``revision``, the variants in its params' order."""
    ood = read_report(repo, revision, OOD_REPORT)
    order = variant_order(committed_text(repo, revision, "params.yaml"), list(ood.get("variants", {})))
    try:
        per_frame = pd.read_csv(io.StringIO(committed_text(repo, revision, OOD_PER_FRAME)))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ExperimentError(f"{OOD_PER_FRAME} at {revision}: not a CSV table ({error})") from error
    return experiment_figures(read_report(repo, revision, TEST_REPORT), ood, allowance, order,
                              gland_dice_where_present(per_frame))


def experiment_figures(test: Mapping, ood: Mapping, allowance: float = ALLOWANCE, variants: list[str] | None = None,
                       where_present: Mapping[str, float] | None = None) -> dict[str, float]:
    """One experiment's figures, each under a row name.

    Args:
        test: ``reports/metrics.json``: ``test`` holds per class ``dice`` (0..1) and ``false_positive_frames``.
        ood: ``reports/ood.json``: ``variants`` holds per variant and class the same keys.
        allowance: the largest gland Dice drop below the test's that still counts as within the band.
        variants: the order of the variants' rows (:func:`variant_order`); None: the report's order.
        where_present: per variant, :func:`gland_dice_where_present`; None: no such rows.

    Returns:
        Row name -> value: ``test <class> Dice``, ``test <class> false frames``, per variant ``<variant> gland
        Dice``, ``<variant> gland minus test``, ``<variant> gland where present`` (with ``where_present``),
        ``<variant> false glands`` and ``<variant> lesion Dice`` (each class but the gland), and ``variants within
        <allowance>`` (a count). A ``null`` Dice is NaN.

    Raises:
        ExperimentError: the test report lacks the gland, or a variant lacks a class of the test report.
    """
    classes = test.get("test", {})
    if GLAND not in classes:
        raise ExperimentError(f"{TEST_REPORT}: no '{GLAND}' under 'test'")
    figures: dict[str, float] = {}
    for name, summary in classes.items():
        figures[f"test {name} Dice"] = _number(summary.get("dice"))
        figures[f"test {name} false frames"] = _number(summary.get("false_positive_frames"))
    test_gland = figures[f"test {GLAND} Dice"]
    within = 0
    reported = ood.get("variants", {})
    for variant in reported if variants is None else variants:
        scores = reported[variant]
        for name in classes:
            if name not in scores:
                raise ExperimentError(f"{OOD_REPORT}: variant '{variant}' has no '{name}'")
        gland = _number(scores[GLAND].get("dice"))
        figures[f"{variant} gland Dice"] = gland
        figures[f"{variant} gland minus test"] = gland - test_gland
        if where_present is not None:
            figures[f"{variant} gland where present"] = where_present.get(variant, float("nan"))
        figures[f"{variant} false glands"] = _number(scores[GLAND].get("false_positive_frames"))
        for name in classes:
            if name != GLAND:
                figures[f"{variant} {name} Dice"] = _number(scores[name].get("dice"))
        within += int(gland >= test_gland - allowance - 1e-12)
    figures[f"variants within {allowance:g}"] = float(within)
    return figures


def spread_table(figures: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Experiments side by side: one column per experiment, then ``mean``, ``sd`` (sample, ddof 1), ``min``, ``max``.

    Args:
        figures: experiment name -> :func:`experiment_figures`; rows in the first experiment's order, rows
            another experiment lacks are NaN there and left out of its summary.
    """
    table = pd.DataFrame({name: pd.Series(values, dtype=float) for name, values in figures.items()})
    order = list(next(iter(figures.values())))
    table = table.reindex(order + [row for row in table.index if row not in order])
    runs = table[list(figures)]
    table["mean"], table["sd"] = runs.mean(axis=1), runs.std(axis=1, ddof=1)
    table["min"], table["max"] = runs.min(axis=1), runs.max(axis=1)
    return table


def is_count(row: str) -> bool:
    """Whether a row of :func:`experiment_figures` counts frames or variants (shown without decimals)."""
    return row.endswith((" false frames", " false glands")) or row.startswith("variants within ")


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`spread_table` as text: Dice to 3 decimals; counts as whole numbers, their mean and sd to 2 decimals."""
    def cell(row: str, column: str, value: float) -> str:
        if pd.isna(value):
            return "-"
        whole = is_count(row) and column not in ("mean", "sd")
        return f"{value:.0f}" if whole else f"{value:.2f}" if is_count(row) else f"{value:.3f}"

    return pd.DataFrame([[cell(row, column, table.loc[row, column]) for column in table.columns]
                         for row in table.index], index=table.index, columns=table.columns)


def _number(value: object) -> float:
    """A report value as a float; None (undefined) is NaN."""
    return float("nan") if value is None else float(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="+", help="experiment names, as `dvc exp show` lists them")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC project (default: here)")
    parser.add_argument("--allowance", type=float, default=ALLOWANCE,
                        help="gland Dice drop below the test's still within the band (default 0.05)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        revisions = experiment_revisions(args.experiments, args.repo)
        figures = {name: revision_figures(args.repo, rev, args.allowance) for name, rev in revisions.items()}
    except ExperimentError as error:
        print(f"seed_spread: {error}", file=sys.stderr)
        return 1
    table = spread_table(figures)
    print(", ".join(f"{name} = {rev}" for name, rev in revisions.items()))
    print(formatted(table).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
