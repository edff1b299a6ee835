"""How the review flag behaves on sample frames of several scanner variants, against each frame's gland Dice.

Renders ``--patients`` x ``--frames`` sample frames per variant (seed ``--seed``, not the
training sample's), segments them with the model as the app does, and prints: the frames
flagged by reason (absent or broken gland, uncertain border) for frames with a gland Dice
below 0.9, at least 0.9, and without a gland in the truth; the flags per variant; and the
Spearman correlation between the border uncertainty and the Dice.

    .venv/bin/python benchmarks/review_flags.py --model models/model.onnx [--variants default wide ...]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from pipeline.imaging.frames import read_frame
from pipeline.inference.gland_size import GLAND_CLASS
from pipeline.inference.predictor import Segmenter
from pipeline.inference.review import review_signal
from pipeline.ingest.coco import read_coco_export
from pipeline.synthetic import SampleSpec, write_sample_export

DICE_FLOOR = 0.9


def frame_table(segmenter: Segmenter, variants: list[str], seed: int, spec: SampleSpec, work: Path) -> pd.DataFrame:
    """One row per frame: variant, gland Dice (NaN without a gland in the truth), border uncertainty, reason."""
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
            rows.append({"variant": variant, "dice": dice,
                         "uncertainty": review_signal(segmentation.probabilities[gland], threshold).uncertainty,
                         "flag": "none" if reason is None else reason.split(" (")[0].replace("the gland is in", "in")})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    parser.add_argument("--variants", nargs="+", default=["default", "jpeg", "probe_bottom", "wide", "wide_bottom",
                                                          "worst_case"])
    parser.add_argument("--patients", type=int, default=4)
    parser.add_argument("--frames", type=int, default=3, help="frames per patient")
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args()
    segmenter = Segmenter(args.model)
    print(f"model {args.model}: review {segmenter.contract.review}")
    spec = SampleSpec(n_patients=args.patients, frames_per_patient=args.frames)
    with tempfile.TemporaryDirectory() as work:
        table = frame_table(segmenter, args.variants, args.seed, spec, Path(work))
    table["flag"] = table["flag"].str.replace(r"in \d+ pieces", "gland in pieces", regex=True)
    table["group"] = np.where(table["dice"].isna(), "no gland in the truth",
                              np.where(table["dice"] < DICE_FLOOR, f"Dice < {DICE_FLOOR}", f"Dice >= {DICE_FLOOR}"))
    pd.set_option("display.width", 160)
    print(pd.crosstab(table["group"], table["flag"], margins=True))
    print(pd.crosstab(table["variant"], table["flag"], margins=True))
    scored = table.dropna(subset=["dice", "uncertainty"])
    result = spearmanr(scored["uncertainty"], scored["dice"])
    print(f"Spearman (border uncertainty, gland Dice) on {len(scored)} frames: {result.statistic:.2f}")


if __name__ == "__main__":
    main()
