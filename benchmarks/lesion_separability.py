"""Can a model tell frames with a lesion from frames without one, at any threshold?

For each checkpoint, every processed frame whose truth holds the host class (the gland) gets
one score: the largest probability of the class (the lesion) at the pixels the model puts
inside the host (host probability above ``--threshold``). Frames whose truth holds the class
are positives. It prints, per checkpoint:

- the frame-level AUC: the chance that a random positive frame scores above a random
  negative one (Mann-Whitney U / (positives x negatives); ties count one half); 1 separates
  them at some threshold, 0.5 is chance;
- the threshold that keeps a share ``--sensitivity`` of the positive frames (the quantile
  of their scores), and how many negative frames score at least that much: the lesion-free
  frames that would still get a lesion drawn, whatever confidence or size filter is added.

The lesion Dice of the reports scores every such frame 0 (README "Metrics"), so this bounds
what post-processing can do with a model's probabilities. Reads the preprocess stage's output
(``artifacts/processed``: images/, masks/, frames.csv); the model runs on the CPU.

    python benchmarks/lesion_separability.py CHECKPOINT [CHECKPOINT ...] [--processed artifacts/processed]
        [--sensitivity 0.9] [--threshold 0.5] [--threads 2]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
import sys

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluation.separability import Separability, separability  # noqa: E402
from pipeline.files.tables import read_table  # noqa: E402
from pipeline.imaging.frames import read_frame  # noqa: E402
from pipeline.imaging.masks import read_bitmask, unpack_masks  # noqa: E402
from pipeline.layout import IMAGES, MASKS, PROCESSED_DIR, PROCESSED_MANIFEST  # noqa: E402
from pipeline.training.checkpoint import load_checkpoint  # noqa: E402
from pipeline.training.predict import predict_probabilities  # noqa: E402


def frame_scores(probabilities: np.ndarray, class_index: int, host_index: int, threshold: float) -> np.ndarray:
    """(N,) float: each frame's largest class probability inside the predicted host (0 with no host pixel).

    Args:
        probabilities: (N, C, S, S) float sigmoid probabilities in [0, 1].
        class_index, host_index: channels of the class (lesion) and its host (gland).
        threshold: a pixel is in the host when its host probability is above it.
    """
    inside = probabilities[:, host_index] > threshold
    return np.where(inside, probabilities[:, class_index], 0.0).reshape(len(probabilities), -1).max(axis=1)


def read_processed(folder: Path, class_index: int, host_index: int, n_classes: int
                   ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The frames of a preprocess-stage folder whose truth holds the host class.

    Returns:
        Their ids, (N, S, S) uint8 images, and (N,) bool: the truth holds the class.
    """
    ids, images, positive = [], [], []
    for frame_id in read_table(folder / PROCESSED_MANIFEST)["frame_id"].astype(str):
        truth = unpack_masks(read_bitmask(folder / MASKS / f"{frame_id}.png"), n_classes)
        if truth[host_index].any():
            ids.append(frame_id)
            images.append(read_frame(folder / IMAGES / f"{frame_id}.png").gray)
            positive.append(bool(truth[class_index].any()))
    return ids, np.stack(images), np.array(positive)


def measure(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, positive: np.ndarray,
            class_index: int, host_index: int, threshold: float, sensitivity: float) -> Separability:
    """``separability`` of the frame scores of ``predict`` ((N, S, S) uint8 -> (N, C, S, S) probabilities)."""
    return separability(frame_scores(predict(images), class_index, host_index, threshold), positive, sensitivity)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--processed", type=Path, default=PROCESSED_DIR)
    parser.add_argument("--sensitivity", type=float, default=0.9)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--class", dest="class_name", default="lesion")
    parser.add_argument("--inside", default="gland")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    loaded = [load_checkpoint(path) for path in args.checkpoints]
    classes = loaded[0][1]["classes"]
    for name in (args.class_name, args.inside):
        if name not in classes:
            parser.error(f"{name!r} is not a class of {args.checkpoints[0]} ({', '.join(classes)})")
    class_index, host_index = classes.index(args.class_name), classes.index(args.inside)
    ids, images, positive = read_processed(args.processed, class_index, host_index, len(classes))
    print(f"{args.processed}: {len(ids)} frames with a {args.inside}, {positive.sum()} of them with a "
          f"{args.class_name}; score: the largest {args.class_name} probability inside the predicted {args.inside}")
    for path, (model, info) in zip(args.checkpoints, loaded):
        if tuple(info["classes"]) != tuple(classes):
            parser.error(f"{path}: classes {info['classes']} differ from {args.checkpoints[0]}'s {classes}")
        result = measure(lambda batch: predict_probabilities(model, batch, info["model"].mean, info["model"].std),
                         images, positive, class_index, host_index, args.threshold, args.sensitivity)
        print(f"{path}: AUC {result.auc:.3f}; a threshold of {result.threshold:.3f} keeps at least "
              f"{args.sensitivity:.0%} of the {result.positives} {args.class_name} frames, and {result.negatives_above} "
              f"of the {result.negatives} frames without a {args.class_name} score as high")


if __name__ == "__main__":
    main()
