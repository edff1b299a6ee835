"""What if every frame reached the network at one physical scale (mm per grid px), whatever its fan?

The diagnostic behind README "Other scanners" (resampling to one pixel size: the next step for the wide fans, not
built). Today's preprocessing crops each frame to its fan and letterboxes that onto the ``preprocess.size`` grid
("fan-fit"), so a wider sector draws the gland smaller. Here, the "physical" crop is instead a square of side
``size x target / spacing`` frame px around the fan, centred across it and starting at the probe's edge (clipped to
the frame), so every frame's grid holds ``target`` mm per px; ``target`` is the median of the training export's
fan-fit (``--data`` and its ``trus_sample_frames.csv`` spacing). Both crops then run the model's own filter,
network, threshold and post-processing (``--model``; the model was trained on fan-fit frames, so this measures what
the scale alone does, not what a model trained at one scale would do). Frames are the ``ood`` stage's (params.yaml's
``ood`` section, spacing from the rendered export's manifest). Prints per variant and crop the gland Dice as the
reports define it, the Dice over the frames with a gland, and the false glands.

    .venv/bin/python benchmarks/physical_scale.py [--data data] [--model models/model.onnx] [--variants wide ...]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import load_params
from pipeline.imaging.diffusion import apply_filter
from pipeline.imaging.fan import Fan, detect_fan
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import plan_geometry, to_network_grid
from pipeline.inference.gland_size import GLAND_CLASS
from pipeline.inference.predictor import PreparedFrame, Segmenter
from pipeline.ingest.coco import read_coco_export
from pipeline.ingest.frames_manifest import read_frames_manifest
from pipeline.synthetic import SampleSpec, write_sample_export
from pipeline.synthetic.manifests import FRAMES_MANIFEST

Box = tuple[int, int, int, int]
END_SHARE = 5  # the fan's first and last fifth of rows are compared to find the probe's edge


def probe_at_top(fan: Fan) -> bool:
    """Whether the probe sits at the top of the fan: its first fifth of rows holds less of the fan than its last."""
    x, y, w, h = fan.box
    inside = fan.mask[y:y + h, x:x + w]
    rows = max(1, h // END_SHARE)
    return int(inside[:rows].sum()) < int(inside[-rows:].sum())


def physical_box(fan_box: Box, probe_top: bool, spacing_mm: float, target_mm: float, size: int,
                 frame_width: int, frame_height: int) -> Box:
    """The crop box, (x, y, w, h) frame px, that puts ``target_mm`` mm on each of the grid's ``size`` px.

    A square of side round(size x target_mm / spacing_mm) px, centred across the fan's box and starting at its
    probe edge (its top with ``probe_top``, else ending at its bottom), clipped to the frame.
    """
    x, y, w, h = fan_box
    side = round(size * target_mm / spacing_mm)
    left = round(x + w / 2 - side / 2)
    top = y if probe_top else y + h - side
    left, top = max(0, left), max(0, top)
    return left, top, min(side, frame_width - left), min(side, frame_height - top)


def spacings(export: Path) -> dict[str, float]:
    """original file name's stem -> horizontal pixel spacing, mm, from the export's ``trus_sample_frames.csv``."""
    manifest = read_frames_manifest(export / FRAMES_MANIFEST)
    return dict(zip(manifest.index, manifest["spacing_x_mm"]))


def fan_fit_grid_mm(segmenter: Segmenter, export: Path) -> float:
    """The median mm per grid px of an export's frames under the model's own (fan-fit) preprocessing."""
    spacing = spacings(export)
    values = []
    for exported in read_coco_export(export, segmenter.classes):
        geometry = segmenter.prepare(read_frame(exported.image_path).gray).geometry
        side = max(geometry.crop_width, geometry.crop_height)
        values.append(side * spacing[exported.name.original_stem] / geometry.size)
    return float(np.median(values))


def physical_frame(segmenter: Segmenter, gray: np.ndarray, fan: Fan, spacing_mm: float,
                   target_mm: float) -> PreparedFrame:
    """The frame cropped by :func:`physical_box`, resized onto the grid and filtered as the model's contract says."""
    spec = segmenter.contract.preprocess
    box = physical_box(fan.box, probe_at_top(fan), spacing_mm, target_mm, spec.size, gray.shape[1], gray.shape[0])
    geometry = plan_geometry(gray.shape[1], gray.shape[0], box, spec.size, spec.resize)
    return PreparedFrame(apply_filter(to_network_grid(gray, geometry, spec.interpolation), spec.filter), geometry)


def frame_rows(segmenter: Segmenter, export: Path, variant: str, target_mm: float) -> list[dict]:
    """Per frame with a gland in its truth or a crop's prediction, and per crop: the gland Dice (0 for a false one)."""
    gland, threshold = segmenter.classes.index(GLAND_CLASS), segmenter.contract.threshold
    spacing = spacings(export)
    rows = []
    for exported in read_coco_export(export, segmenter.classes):
        gray = read_frame(exported.image_path).gray
        truth = exported.masks(len(segmenter.classes))[gland]
        fan = detect_fan(gray)
        crops = {"fan-fit": segmenter.prepare(gray, fan=fan),
                 "physical": physical_frame(segmenter, gray, fan, spacing[exported.name.original_stem], target_mm)}
        for crop, prepared in crops.items():
            predicted = segmenter.segment_prepared(prepared).masks(threshold)[gland]
            if truth.any() or predicted.any():
                dice = 2.0 * float((truth & predicted).sum()) / float(truth.sum() + predicted.sum())
                rows.append({"variant": variant, "crop": crop, "dice": dice, "with_gland": bool(truth.any())})
    return rows


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per variant and crop: gland Dice (every scored frame), on the frames with a gland, and the false glands."""
    grouped = rows.groupby(["variant", "crop"], sort=False)
    return pd.DataFrame({
        "gland Dice": grouped["dice"].mean(),
        "with a gland": rows[rows["with_gland"]].groupby(["variant", "crop"], sort=False)["dice"].mean(),
        "false glands": grouped["with_gland"].apply(lambda with_gland: int((~with_gland).sum())),
    }).unstack("crop")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="the training export, for the target scale")
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"))
    parser.add_argument("--variants", nargs="*", default=None, help="default: params.yaml's ood.variants")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ood = load_params().ood
    segmenter = Segmenter(args.model, precision="fp32")
    target_mm = fan_fit_grid_mm(segmenter, args.data)
    print(f"target: {target_mm:.4f} mm per grid px (the median fan-fit of {args.data})")
    spec = SampleSpec(n_patients=ood.patients, frames_per_patient=ood.frames_per_patient)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="trus-physical-") as work:
        for variant in ood.variants if args.variants is None else args.variants:
            export = Path(work) / variant
            write_sample_export(export, ood.seed, replace(spec, variant=variant))
            rows += frame_rows(segmenter, export, variant, target_mm)
    print(summary(pd.DataFrame(rows)).round(3).to_string())


if __name__ == "__main__":
    main()
