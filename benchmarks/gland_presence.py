"""Can a whole-frame classifier tell a frame with a gland from one without, from the training sample's few empty frames?

The measurement behind README "Other scanners" (a frame-level "no gland" decision, not built). It trains the
frame plane classifier's network (:class:`pipeline.training.frame_plane.FramePlaneClassifier`: a 64 px thumbnail,
5 convolution blocks, 135 k parameters) with one output, "the frame shows a gland", on every frame of a training
export (``--data``, the demo's sample), with the training augmentations of params.yaml (``train.augment``) and
BCE weighted so both kinds count alike, once per ``--seeds``. Frames are preprocessed by ``--model``'s contract,
as the app does. Then it scores frames training never saw: an independent sample of the same scanner look
(``--test-seed``) and the ``ood`` stage's variants (params.yaml's ``ood`` section), and prints per seed and set:
frames, frames without a gland, the AUC (the chance a frame with a gland scores above one without), the
frames with a gland scored below 0.5 and those without one scored at or above it.

    .venv/bin/python benchmarks/gland_presence.py [--data data] [--model models/model.onnx] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import mannwhitneyu
from torch import nn

from pipeline.config import AugmentParams, load_params
from pipeline.imaging.frames import read_frame
from pipeline.imaging.preprocessing import network_input
from pipeline.inference.gland_size import GLAND_CLASS
from pipeline.inference.predictor import Segmenter
from pipeline.ingest.coco import read_coco_export
from pipeline.synthetic import SampleSpec, write_sample_export
from pipeline.training.augment import augment
from pipeline.training.frame_plane import FramePlaneClassifier

BATCH = 8
LEARNING_RATE = 1e-3


def load_frames(root: Path, segmenter: Segmenter) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of a COCO export, preprocessed by the model's contract.

    Returns:
        (N, S, S) uint8 preprocessed frames and (N,) bool: the frame's truth holds a gland.
    """
    images, present = [], []
    gland = segmenter.classes.index(GLAND_CLASS)
    for exported in read_coco_export(root, segmenter.classes):
        frame = read_frame(exported.image_path)
        images.append(segmenter.prepare(frame.gray, frame.region_box).image)
        present.append(bool(exported.masks(len(segmenter.classes))[gland].any()))
    return np.stack(images), np.array(present)


def train_presence(images: np.ndarray, present: np.ndarray, augmentation: AugmentParams, mean: float, std: float,
                   epochs: int, seed: int) -> nn.Module:
    """The classifier trained on ``images`` (N, S, S) uint8 with labels ``present`` (N,) bool, in eval mode.

    Each frame is augmented afresh at each step; frames without a gland weigh (frames with one) / (frames
    without), so both kinds weigh alike in the BCE.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = FramePlaneClassifier(in_channels=1)
    network.linear = nn.Linear(network.linear.in_features, 1)
    optimiser = torch.optim.Adam(network.parameters(), LEARNING_RATE)
    labels = torch.from_numpy(present.astype(np.float32))
    absent_weight = float(present.sum()) / max(1, int((~present).sum()))
    network.train()
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for start in range(0, len(images), BATCH):
            batch = order[start:start + BATCH]
            augmented = np.stack([augment(images[i], np.zeros_like(images[i]), rng, augmentation)[0] for i in batch])
            weights = torch.where(labels[batch] > 0, 1.0, absent_weight)
            logits = network(torch.from_numpy(network_input(augmented, mean, std)))[:, 0]
            loss = F.binary_cross_entropy_with_logits(logits, labels[batch], weight=weights)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return network.eval()


def presence_scores(network: nn.Module, images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """(N,) float in [0, 1]: the classifier's probability that each (N, S, S) uint8 frame shows a gland."""
    with torch.no_grad():
        return torch.sigmoid(network(torch.from_numpy(network_input(images, mean, std)))[:, 0]).numpy()


def score_line(name: str, scores: np.ndarray, present: np.ndarray) -> str:
    """One set's figures: frames, frames without a gland, AUC (n/a with only one kind), and the errors at 0.5."""
    with_gland, without = scores[present], scores[~present]
    auc = (f"{mannwhitneyu(with_gland, without).statistic / (len(with_gland) * len(without)):.3f}"
           if len(with_gland) and len(without) else "n/a")
    return (f"{name:14s} frames {len(scores):4d}  without a gland {len(without):3d}  AUC {auc}  "
            f"gland frames < 0.5: {int((with_gland < 0.5).sum()):3d}  gland-free frames >= 0.5: "
            f"{int((without >= 0.5).sum()):3d}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="the training export (COCO)")
    parser.add_argument("--model", type=Path, default=Path("models/model.onnx"), help="its preprocessing contract")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--test-seed", type=int, default=13, help="the independent sample of the same look")
    parser.add_argument("--test-patients", type=int, default=40)
    parser.add_argument("--test-frames", type=int, default=6, help="frames per patient of that sample")
    parser.add_argument("--variants", nargs="*", default=None, help="default: params.yaml's ood.variants")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params()
    ood = params.ood
    segmenter = Segmenter(args.model, precision="fp32")
    mean, std = segmenter.contract.mean, segmenter.contract.std
    images, present = load_frames(args.data, segmenter)
    print(f"training frames: {len(images)} from {args.data}, {int((~present).sum())} without a gland")
    test_sets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="trus-presence-") as work:
        sample = Path(work) / "same-look"
        write_sample_export(sample, args.test_seed, SampleSpec(n_patients=args.test_patients,
                                                               frames_per_patient=args.test_frames))
        test_sets[f"seed {args.test_seed}"] = load_frames(sample, segmenter)
        spec = SampleSpec(n_patients=ood.patients, frames_per_patient=ood.frames_per_patient)
        for variant in ood.variants if args.variants is None else args.variants:
            write_sample_export(Path(work) / variant, ood.seed, replace(spec, variant=variant))
            test_sets[variant] = load_frames(Path(work) / variant, segmenter)
    for seed in args.seeds:
        network = train_presence(images, present, params.train.augment, mean, std, args.epochs, seed)
        print(f"seed {seed} ({args.epochs} epochs):")
        for name, (test_images, test_present) in test_sets.items():
            print("  " + score_line(name, presence_scores(network, test_images, mean, std), test_present))


if __name__ == "__main__":
    main()
