"""How well the depth scale gives the pixel spacing on every scanner variant of the sample generator.

For each variant, renders N frames at the variant's own size (the original scanner's 1280 x 872
for the others), reads the spacing from the burned-in depth scale, and prints the worst and
median error against the generator's true spacing, the refusals, and the time per frame.

    .venv/bin/python benchmarks/depth_scale.py [--frames 10]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from pipeline.imaging.depth_scale import DepthScaleError, read_depth_scale
from pipeline.synthetic import render_phantom
from pipeline.synthetic.variants import VARIANTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="frames per variant (seeds 0..N-1)")
    frames = parser.parse_args().frames
    print(f"{'variant':<15} {'frames':>6} {'refused':>7} {'worst error':>11} {'median error':>12} {'ms/frame':>8}")
    for name, variant in VARIANTS.items():
        width, height = variant.size or (1280, 872)
        errors, refused, seconds = [], 0, 0.0
        for seed in range(frames):
            rendered = render_phantom(np.random.default_rng(seed), width, height, with_lesion=False, variant=variant)
            gray = cv2.cvtColor(rendered.image, cv2.COLOR_BGR2GRAY)
            start = time.perf_counter()
            try:
                scale = read_depth_scale(gray)
            except DepthScaleError:
                refused += 1
                continue
            finally:
                seconds += time.perf_counter() - start
            errors.append(abs(scale.mm_per_px / rendered.spacing_mm - 1))
        worst = f"{100 * max(errors):.2f}%" if errors else "-"
        median = f"{100 * float(np.median(errors)):.2f}%" if errors else "-"
        print(f"{name:<15} {frames:>6} {refused:>7} {worst:>11} {median:>12} {1000 * seconds / frames:>8.0f}")


if __name__ == "__main__":
    main()
