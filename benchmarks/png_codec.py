"""Size, encode and decode time of the PNG settings the pipeline could write, per kind of file.

    python benchmarks/png_codec.py [--frames 4] [--repeats 5]

Renders ``--frames`` 1280x872 phantom frames and, for each of the three kinds of PNG the
pipeline writes - the pull stage's grey frames (1280x872), the preprocess stage's network
frames (768x768, isotropic filter) and the bitmasks (1280x872) - prints the mean file size,
the encode time and the decode time (``cv2.imdecode``, one OpenCV thread) of OpenCV's default
and of each zlib strategy x PNG row filter at zlib level 1. Every setting is checked to give
the pixels back exactly. The setting the pipeline uses, ``PNG_WRITE_PARAMS``, is marked ``*``.
It never fails on speed.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.imaging.preprocessing import preprocess_frame
from pipeline.imaging.masks import pack_masks
from pipeline.imaging.png import PNG_WRITE_PARAMS
from pipeline.synthetic import render_phantom

STRATEGIES = {"rle": cv2.IMWRITE_PNG_STRATEGY_RLE, "default": cv2.IMWRITE_PNG_STRATEGY_DEFAULT,
              "filtered": cv2.IMWRITE_PNG_STRATEGY_FILTERED}
ROW_FILTERS = {"none": cv2.IMWRITE_PNG_FILTER_NONE, "sub": cv2.IMWRITE_PNG_FILTER_SUB,
               "up": cv2.IMWRITE_PNG_FILTER_UP, "paeth": cv2.IMWRITE_PNG_FILTER_PAETH}


def sample_images(count: int) -> dict[str, list[np.ndarray]]:
    """The three kinds of PNG content, ``count`` of each: (H, W) uint8."""
    frames = [render_phantom(np.random.default_rng([11, index]), 1280, 872, with_lesion=True) for index in range(count)]
    grey = [cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY) for frame in frames]
    spec = PreprocessSpec(filter=FilterSpec(method="isotropic"))
    return {"pull frame 1280x872": grey,
            "network frame 768x768": [preprocess_frame(image, spec).image for image in grey],
            "bitmask 1280x872": [pack_masks(np.stack([frame.gland_mask, frame.lesion_mask])) for frame in frames]}


def best_ms(action: Callable[[object], object], items: Sequence[object], repeats: int) -> float:
    """Best-of-``repeats`` mean ms per item."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for item in items:
            action(item)
        best = min(best, (time.perf_counter() - start) / len(items))
    return 1e3 * best


def settings() -> dict[str, tuple[int, ...]]:
    """OpenCV's default and every strategy x row filter at zlib level 1, as imencode params."""
    table: dict[str, tuple[int, ...]] = {"opencv default (rle, sub)": ()}
    for (strategy, code), (row_filter, filter_code) in itertools.product(STRATEGIES.items(), ROW_FILTERS.items()):
        table[f"{strategy}, {row_filter}, level 1"] = (cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, code,
                                                       cv2.IMWRITE_PNG_FILTER, filter_code)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=4, help="frames per kind (default 4)")
    parser.add_argument("--repeats", type=int, default=5, help="passes; the best is shown (default 5)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    for kind, images in sample_images(args.frames).items():
        print(f"\n{kind}\n{'setting':<32}{'kB':>8}{'encode ms':>11}{'decode ms':>11}")
        for name, params in settings().items():
            encoded = [cv2.imencode(".png", image, params)[1] for image in images]
            if any(not np.array_equal(cv2.imdecode(data, cv2.IMREAD_UNCHANGED), image)
                   for data, image in zip(encoded, images)):
                raise SystemExit(f"{name}: the decoded pixels differ from the written ones")
            mark = "*" if tuple(params) == tuple(PNG_WRITE_PARAMS) else " "
            print(f"{mark}{name:<31}{np.mean([data.size for data in encoded]) / 1e3:>8.1f}"
                  f"{best_ms(lambda image: cv2.imencode('.png', image, params), images, args.repeats):>11.2f}"
                  f"{best_ms(lambda data: cv2.imdecode(data, cv2.IMREAD_UNCHANGED), encoded, args.repeats):>11.2f}")


if __name__ == "__main__":
    main()
