"""How the review flag behaves on sample frames of several scanner variants, against each frame's gland Dice.

Renders ``--patients`` x ``--frames`` sample frames per variant (seed ``--seed``, not the training sample's; by
default the ``ood`` stage's frames, from params.yaml's ``ood`` section), segments them as the app does (with the
float model by default, as the ``ood`` stage scores it; ``--precision auto`` picks as the app does), and prints: the frames flagged by reason (absent or broken gland, uncertain border) for frames with a gland
Dice below 0.9, at least 0.9, and without a gland in the truth; the flags per variant; the Spearman correlation
between the border uncertainty and the Dice; and each variant's median true gland diameter on the network's grid
(how large the preprocessing draws the gland for the network). With ``--gate``, also each variant's gland Dice as
the reports define it (over the frames with a gland in the truth or the prediction, a gland drawn on a frame without
one scoring 0), without a gate and with the glands of a border uncertainty above each limit dropped: what a
"no gland" decision taken from the border uncertainty would do.

    .venv/bin/python benchmarks/review_flags.py [--model models/model.onnx] [--variants default wide ...]
        [--gate 0.5 0.7 ...] [--precision auto]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from pipeline.config import OodParams, load_params
from pipeline.imaging.frames import read_frame
from pipeline.inference.gland_size import GLAND_CLASS
from pipeline.inference.predictor import Segmenter
from pipeline.inference.review import review_signal
from pipeline.ingest.coco import read_coco_export
from pipeline.synthetic import SampleSpec, write_sample_export

DICE_FLOOR = 0.9


def equivalent_diameter(area: float) -> float:
    """The diameter, px, of the disk of ``area`` px^2: sqrt(4 area / pi)."""
    return math.sqrt(4.0 * area / math.pi)


def frame_table(segmenter: Segmenter, variants: list[str], seed: int, spec: SampleSpec, work: Path) -> pd.DataFrame:
    """One row per frame: variant, gland Dice (NaN without a gland in the truth), whether a gland was predicted,
    the true gland's equivalent diameter on the network's grid (px; NaN without one), border uncertainty (NaN
    without a predicted gland), review reason."""
    gland, threshold = segmenter.classes.index(GLAND_CLASS), segmenter.contract.threshold
    rows = []
    for variant in variants:
        export = work / variant
        write_sample_export(export, seed, replace(spec, variant=variant))
        for exported in read_coco_export(export, segmenter.classes):
            frame = read_frame(exported.image_path)
            segmentation = segmenter.segment(frame.gray, frame.region_box)
            truth, predicted = exported.masks(len(segmenter.classes))[gland], segmentation.masks(threshold)[gland]
            dice = 2 * (truth & predicted).sum() / (truth.sum() + predicted.sum()) if truth.any() else np.nan
            reason = segmentation.review_reason(threshold)
            grid_area = truth.sum() * segmentation.geometry.scale_x * segmentation.geometry.scale_y  # px^2 on the grid
            rows.append({"variant": variant, "dice": dice, "predicted": bool(predicted.any()),
                         "grid_diameter": equivalent_diameter(grid_area) if truth.any() else np.nan,
                         "uncertainty": review_signal(segmentation.probabilities[gland], threshold).uncertainty,
                         "flag": "none" if reason is None else reason.split(" (")[0].replace("the gland is in", "in")})
    return pd.DataFrame(rows)


def gated_gland_dice(table: pd.DataFrame, limit: float | None) -> pd.Series:
    """Each variant's gland Dice when glands with a border uncertainty above ``limit`` are dropped (None: none are).

    Args:
        table: :func:`frame_table`'s rows.
        limit: the border uncertainty in [0, 1] above which a predicted gland is dropped, or None.

    Returns:
        Per variant (in the table's order), the mean over the frames with a gland in the truth or in the kept
        prediction: a kept gland scores its Dice, a dropped or missed true gland 0, a kept false gland 0.
    """
    dropped = table["predicted"] & (table["uncertainty"] > limit) if limit is not None else False
    kept = table["predicted"] & ~dropped
    has_truth = table["dice"].notna()
    scored = has_truth | kept
    score = table["dice"].where(has_truth & kept, 0.0)[scored]
    return score.groupby(table["variant"][scored], sort=False).mean()


def parse_args(argv: list[str] | None, ood: OodParams) -> argparse.Namespace:
    """The command line; what it does not set comes from ``ood`` (params.yaml's ``ood`` section: the ood stage's
    variants, patients, frames per patient and seed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    parser.add_argument("--variants", nargs="+", default=list(ood.variants))
    parser.add_argument("--patients", type=int, default=ood.patients)
    parser.add_argument("--frames", type=int, default=ood.frames_per_patient, help="frames per patient")
    parser.add_argument("--seed", type=int, default=ood.seed)
    parser.add_argument("--gate", type=float, nargs="*", default=[], metavar="LIMIT",
                        help="border uncertainties to print the per-variant gland Dice with glands above dropped")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "int8", "auto"],
                        help="the model the ood stage scores (fp32) unless told otherwise")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv, load_params().ood)
    segmenter = Segmenter(args.model, precision=args.precision)
    print(f"model {args.model}: review {segmenter.contract.review}")
    spec = SampleSpec(n_patients=args.patients, frames_per_patient=args.frames)
    with tempfile.TemporaryDirectory() as work:
        table = frame_table(segmenter, args.variants, args.seed, spec, Path(work))
    table["flag"] = table["flag"].str.replace(r"in \d+ pieces", "gland in pieces", regex=True)
    table["group"] = np.where(table["dice"].isna(), "no gland in the truth",
                              np.where(table["dice"] < DICE_FLOOR, f"Dice < {DICE_FLOOR}", f"Dice >= {DICE_FLOOR}"))
    pd.set_option("display.width", 160)
    print(pd.crosstab(table["group"], table["flag"], margins=True).to_string())  # every column, whatever the width
    print(pd.crosstab(table["variant"], table["flag"], margins=True).to_string())
    scored = table.dropna(subset=["dice", "uncertainty"])
    result = spearmanr(scored["uncertainty"], scored["dice"])
    print(f"Spearman (border uncertainty, gland Dice) on {len(scored)} frames: {result.statistic:.2f}")
    diameters = table.groupby("variant", sort=False)["grid_diameter"].median()
    print("median true gland diameter on the network's grid, px: "
          + ", ".join(f"{variant} {value:.0f}" for variant, value in diameters.items()))
    if args.gate:
        gated = pd.DataFrame({"no gate" if limit is None else f"drop > {limit:g}": gated_gland_dice(table, limit)
                              for limit in [None, *args.gate]}).T
        print("gland Dice per variant, glands above a border uncertainty dropped:")
        print(gated.round(3).to_string())


if __name__ == "__main__":
    main()
