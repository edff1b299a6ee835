"""How far does darkness alone tell a frame with a lesion from one without? A model-free yardstick.

An observer that knows the true gland gives each frame one score: how much darker than the
gland's median grey level its darkest lesion-sized disk is (``darkest_disk``). Frames whose
truth holds a lesion are positives; the script prints the frame-level AUC and the lesion-free
frames left at a sensitivity, as ``lesion_separability.py`` does for a model's probabilities,
so the two compare directly. It reads either

- ``--processed DIR``: the preprocess stage's frames (what the network sees, the diffusion
  filter applied), the disk's radius converted with each frame's ``net_spacing_x_mm``; or
- ``--generator N``: N mid-gland transverse frames of the sample generator (every second one
  with a lesion, default scanner, seeds 1000..1000+N-1, 1280 x 872 px), each rendered twice
  with the same anatomy: as the scanner shows it, and without the beam (no speckle, depth
  attenuation or calcification shadows; ``render_phantom(beam=False)``). The second is what
  an observer free of speckle could see.

    python benchmarks/lesion_darkness.py (--processed DIR | --generator N) [--radius-mm 3 4.5 6]
        [--sensitivity 0.9] [--picture FILE.jpg]

``--picture`` (with ``--generator``) also writes the first six generated frames, cropped to the
gland: each as its echo map, the true lesion outlined in red, beside the frame as scanned.

The score ignores the outline (round or elongated, sharp or soft edge) on purpose: it measures
how much of the task brightness settles, and so how much a model must take from shape.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from pathlib import Path
import sys

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.evaluation.separability import Separability, separability  # noqa: E402
from pipeline.files.atomic import write_bytes_atomically  # noqa: E402
from pipeline.files.tables import read_table  # noqa: E402
from pipeline.imaging.frames import read_frame  # noqa: E402
from pipeline.imaging.masks import read_bitmask, unpack_masks  # noqa: E402
from pipeline.layout import IMAGES, MASKS, PROCESSED_MANIFEST  # noqa: E402
from pipeline.synthetic import PhantomFrame, render_phantom  # noqa: E402
from pipeline.synthetic.anatomy import MID_GLAND  # noqa: E402

GENERATOR_SIZE = (1280, 872)  # width, height px of the generated frames
GENERATOR_SEED = 1000
PICTURE_FRAMES = 6
PICTURE_TILE = (280, 205)  # width, height px of one frame's tile in --picture


def darkest_disk(gray: np.ndarray, gland: np.ndarray, radius_px: int) -> float:
    """How much darker than the gland its darkest disk is, in grey levels (positive: darker).

    Args:
        gray: (H, W) uint8 or float grey image, 0..255.
        gland: (H, W) bool true gland mask, at least one pixel.
        radius_px: disk radius, px, >= 1.

    Returns:
        The gland's median grey level minus the smallest mean grey level over disks of
        ``radius_px`` whose centres lie at least ``radius_px + 1`` px inside the gland (the
        disk within it). A gland too thin for that uses the centres of its deepest fifth.

    Raises:
        ValueError: an empty gland or a radius below 1.
    """
    if radius_px < 1:
        raise ValueError(f"radius_px must be at least 1, got {radius_px}")
    if not gland.any():
        raise ValueError("the gland mask is empty")
    kernel = np.zeros((2 * radius_px + 1,) * 2, np.float32)
    cv2.circle(kernel, (radius_px, radius_px), radius_px, 1.0, -1)
    image = gray.astype(np.float32)
    disk_mean = cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)
    depth = cv2.distanceTransform(gland.astype(np.uint8), cv2.DIST_L2, 5)
    centres = depth >= radius_px + 1
    if not centres.any():
        centres = depth >= 0.8 * depth.max()
    return float(np.median(image[gland]) - disk_mean[centres].min())


def processed_frames(folder: Path) -> Iterator[tuple[np.ndarray, np.ndarray, bool, float]]:
    """(gray, gland, has lesion, mm per px) of each frame of a preprocess-stage folder whose truth holds a gland.

    Classes are channels 0 (gland) and 1 (lesion) of the masks, as the sample's export has them.
    """
    table = read_table(folder / PROCESSED_MANIFEST)
    for frame_id, spacing in zip(table["frame_id"].astype(str), table["net_spacing_x_mm"]):
        truth = unpack_masks(read_bitmask(folder / MASKS / f"{frame_id}.png"), 2)
        if truth[0].any():
            if not np.isfinite(spacing) or spacing <= 0:
                raise ValueError(f"{folder / PROCESSED_MANIFEST}: frame {frame_id} has no pixel spacing")
            yield read_frame(folder / IMAGES / f"{frame_id}.png").gray, truth[0], bool(truth[1].any()), float(spacing)


def _render(index: int, beam: bool) -> PhantomFrame:
    """Generated frame ``index``: mid-gland transverse, default scanner, a lesion when ``index`` is odd."""
    width, height = GENERATOR_SIZE
    return render_phantom(np.random.default_rng(GENERATOR_SEED + index), width, height, with_lesion=index % 2 == 1,
                          frame_slice=MID_GLAND, beam=beam)


def generated_frames(count: int, beam: bool) -> Iterator[tuple[np.ndarray, np.ndarray, bool, float]]:
    """(gray, gland, has lesion, mm per px) of ``count`` generated frames (:func:`_render`), with or without the beam."""
    for index in range(count):
        frame = _render(index, beam)
        yield frame.image[..., 0], frame.gland_mask, bool(frame.lesion_mask.any()), 10.0 / frame.fan.px_per_cm


def picture(count: int = PICTURE_FRAMES, tile: tuple[int, int] = PICTURE_TILE) -> np.ndarray:
    """(H, W, 3) uint8 BGR: the first ``count`` generated frames around their gland, two frames per row.

    Each frame is two tiles of ``tile`` (width, height) px: without the beam, the true lesion
    outlined in red, and as scanned; each labelled with whether the frame holds a lesion.
    """
    pairs = []
    for index in range(count):
        clean, scanned = _render(index, beam=False), _render(index, beam=True)
        ys, xs = np.nonzero(clean.gland_mask)
        box = (slice(max(ys.min() - 20, 0), ys.max() + 20), slice(max(xs.min() - 20, 0), xs.max() + 20))
        tiles = []
        for frame, title in ((clean, "echo map"), (scanned, "as scanned")):
            image = np.ascontiguousarray(frame.image[box])
            if frame is clean:
                contours, _ = cv2.findContours(clean.lesion_mask[box].astype(np.uint8), cv2.RETR_EXTERNAL,
                                               cv2.CHAIN_APPROX_NONE)
                cv2.drawContours(image, contours, -1, (0, 0, 255), 2)
            image = cv2.resize(image, tile, interpolation=cv2.INTER_AREA)
            label = f"{'lesion' if clean.lesion_mask.any() else 'no lesion'}, {title}"
            cv2.putText(image, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(image)
        pairs.append(np.hstack(tiles))
    if len(pairs) % 2:
        pairs.append(np.zeros_like(pairs[0]))
    return np.vstack([np.hstack(pairs[i:i + 2]) for i in range(0, len(pairs), 2)])


def measure(frames: Iterator[tuple[np.ndarray, np.ndarray, bool, float]], radii_mm: Sequence[float],
            sensitivity: float) -> dict[float, Separability]:
    """The separability of ``darkest_disk`` scores, per disk radius (mm)."""
    scores: dict[float, list[float]] = {radius: [] for radius in radii_mm}
    positive: list[bool] = []
    for gray, gland, has_lesion, mm_per_px in frames:
        positive.append(has_lesion)
        for radius in radii_mm:
            scores[radius].append(darkest_disk(gray, gland, max(1, round(radius / mm_per_px))))
    labels = np.array(positive, bool)
    return {radius: separability(np.array(values), labels, sensitivity) for radius, values in scores.items()}


def _print(title: str, results: dict[float, Separability], sensitivity: float) -> None:
    first = next(iter(results.values()))
    print(f"{title}: {first.positives + first.negatives} frames with a gland, {first.positives} with a lesion")
    for radius, result in results.items():
        print(f"  disk radius {radius:g} mm: AUC {result.auc:.3f}; at {sensitivity:.0%} sensitivity "
              f"{result.negatives_above} of the {result.negatives} lesion-free frames score as dark")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--processed", type=Path)
    source.add_argument("--generator", type=int, metavar="N")
    parser.add_argument("--radius-mm", type=float, nargs="+", default=[3.0, 4.5, 6.0])
    parser.add_argument("--sensitivity", type=float, default=0.9)
    parser.add_argument("--picture", type=Path, help="with --generator: write the first six frames here (.jpg or .png)")
    args = parser.parse_args(argv)
    if any(radius <= 0 for radius in args.radius_mm):
        parser.error(f"--radius-mm must be positive, got {args.radius_mm}")
    if args.picture is not None:
        if args.generator is None:
            parser.error("--picture draws generated frames: give --generator N")
        if args.picture.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            parser.error(f"--picture must end in .jpg or .png, got {args.picture}")
        if args.picture.exists():
            parser.error(f"{args.picture} exists; give a new file name")
    try:
        if args.processed is not None:
            if not (args.processed / PROCESSED_MANIFEST).is_file():
                parser.error(f"{args.processed}: no {PROCESSED_MANIFEST} (not a preprocess-stage folder)")
            _print(str(args.processed), measure(processed_frames(args.processed), args.radius_mm, args.sensitivity),
                   args.sensitivity)
            return
        if args.generator < 2:
            parser.error(f"--generator needs at least 2 frames (one with a lesion), got {args.generator}")
        if args.picture is not None:
            _, data = cv2.imencode(args.picture.suffix.lower(), picture(), [cv2.IMWRITE_JPEG_QUALITY, 85])
            write_bytes_atomically(args.picture, data.tobytes())
            print(f"wrote {args.picture}")
        for beam, title in ((True, "as scanned"), (False, "without the beam (no speckle)")):
            _print(f"generator, {args.generator} frames, {title}",
                   measure(generated_frames(args.generator, beam), args.radius_mm, args.sensitivity), args.sensitivity)
    except ValueError as error:
        parser.exit(1, f"error: {error}\n")


if __name__ == "__main__":
    main()
