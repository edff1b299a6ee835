"""What the plane head costs a training step on windows: the demo setting, on random data.

Times ``train_step`` (forward, backward, Adam) for U-Net/ResNet-18 from scratch, batches of
4 windows of 128 px cut from 256 px frames (``make demo``'s setting), without a plane head,
with the frame classifier (``model.plane_classifier: frame``: every frame whole), and with
smp's head on the encoder trained on the windows alone or with M frames whole
(``train.patch.plane_frames``). Prints the median of the timed steps after warm-up steps, and
each option's cost over the network without a head.

    python benchmarks/plane_head_step.py [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path
import sys

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.config import ModelParams  # noqa: E402
from pipeline.loss_spec import LossParams  # noqa: E402
from pipeline.training.loop import seed_everything, train_step  # noqa: E402
from pipeline.training.losses import build_loss  # noqa: E402
from pipeline.training.model import build_model  # noqa: E402
from pipeline.training.plane_head import WholeFramePlane  # noqa: E402

BATCH, WINDOW, FRAME, CLASSES = 4, 128, 256, 2
DEMO = ModelParams(arch="Unet", encoder="resnet18", encoder_weights=None, plane_head=False)
# option name -> (model params, whole frames per step; None: the network is called on the windows alone)
OPTIONS: dict[str, tuple[ModelParams, int | None]] = {
    "no plane head": (DEMO, None),
    "frame classifier (all 4 frames whole)": (dataclasses.replace(DEMO, plane_head=True), BATCH),
    "head on the encoder, windows only": (dataclasses.replace(DEMO, plane_head=True, plane_classifier="encoder"), None),
    "head on the encoder, 1 frame whole": (dataclasses.replace(DEMO, plane_head=True, plane_classifier="encoder"), 1),
    "head on the encoder, 4 frames whole": (dataclasses.replace(DEMO, plane_head=True, plane_classifier="encoder"),
                                            BATCH),
}


def step_seconds(model_params: ModelParams, whole_frames: int | None, steps: int, warmup: int) -> float:
    """The median seconds of ``steps`` training steps after ``warmup`` untimed ones."""
    seed_everything(0)
    network = build_model(model_params, CLASSES)
    trained = network if whole_frames is None else WholeFramePlane(network)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss_fn = build_loss(LossParams(), CLASSES)
    windows, frames = torch.randn(BATCH, 1, WINDOW, WINDOW), torch.randn(BATCH, 1, FRAME, FRAME)
    targets = (torch.rand(BATCH, CLASSES, WINDOW, WINDOW) > 0.5).float()
    planes = torch.tensor([0, 1] * (BATCH // 2)) if model_params.plane_head else None
    times = []
    for index in range(warmup + steps):
        start = time.perf_counter()
        train_step(trained, windows, targets, loss_fn, optimizer, scaler, planes=planes, plane_weight=0.2,
                   plane_frames=None if whole_frames is None else frames[:whole_frames])
        if index >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per option (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"train_step, U-Net/ResNet-18, batch {BATCH} windows of {WINDOW} px from {FRAME} px frames, "
          f"{args.threads} thread(s), median of {args.steps} steps after {args.warmup}")
    baseline = None
    for name, (model_params, whole_frames) in OPTIONS.items():
        seconds = step_seconds(model_params, whole_frames, args.steps, args.warmup)
        baseline = baseline or seconds
        print(f"  {name:40s} {seconds:6.3f} s  {100 * (seconds / baseline - 1):+5.0f}%")


if __name__ == "__main__":
    main()
