"""What the benchmarks share: synthetic frame files of the original scanner's size, and the load average.

Imported by the benchmark scripts, which run as ``python benchmarks/<name>.py`` (their folder is
then first on ``sys.path``).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from pipeline.imaging.png import write_png_atomically
from pipeline.synthetic import PhantomFrame, render_phantom

FRAME_WIDTH, FRAME_HEIGHT = 1280, 872
"""The original scanner's frame size, px."""


def render_frame(index: int, seed: int = 7) -> PhantomFrame:
    """The ``index``-th 1280x872 phantom frame of ``seed`` (with a lesion when ``index`` is even) and its truth."""
    return render_phantom(np.random.default_rng([seed, index]), FRAME_WIDTH, FRAME_HEIGHT,
                          with_lesion=index % 2 == 0, label=f"BENCH F{index:03d}")


def write_grey_frames(folder: Path, count: int, seed: int = 7) -> list[Path]:
    """Renders ``count`` 1280x872 phantom frames (:func:`render_frame` 0, 1, ...) into ``folder`` as grey PNG
    files, as the pull stage writes them; ``seed`` picks the frames (the same seed, the same pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"frame_{seed}_{index:03d}.png"
        write_png_atomically(path, cv2.cvtColor(render_frame(index, seed).image, cv2.COLOR_BGR2GRAY))
        paths.append(path)
    return paths


def load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
