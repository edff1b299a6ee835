"""Annotation quality control: findings per frame and over the whole export, before training.

Each finding kind is a field of :class:`pipeline.config.QcParams`, whose value says what
it does: ``ignore`` (not reported), ``warn`` (reported) or ``error`` (reported; the pull
stage stops after writing the report). Every check is a pure function of the frame's
annotations, its decoded image size and masks, or the manifest; the readers add their own
findings about what they read but could not use (:func:`reader_findings`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import QcParams, setting
from pipeline.ingest.records import ExportFrame, ReadFinding, Ring, Shape, fill_shape
from pipeline.files.atomic import write_json_atomically

PAIR_BLOCK = 256  # edges tested against all others at once (bounds memory for long rings)
OUTSIDE_TOLERANCE_PX = 1.0  # vertices this far beyond the image border are still inside (COCO uses [0, w])


@dataclass(frozen=True)
class Finding:
    """One annotation-quality problem.

    Attributes:
        kind: the check, a :class:`QcParams` field name (``tiny_polygon``, ...).
        action: ``warn`` or ``error``, from ``QcParams``.
        frame: the export file name, or ``''`` for a finding about the whole export.
        detail: what is wrong, for a person.
    """

    kind: str
    action: str
    frame: str
    detail: str


def pixel_digest(gray: np.ndarray) -> str:
    """SHA-256 (first 16 hex) of a decoded image's shape and pixels, for :func:`export_findings`."""
    digest = hashlib.sha256(repr(gray.shape).encode())
    digest.update(np.ascontiguousarray(gray).tobytes())
    return digest.hexdigest()[:16]


def ring_area(ring: Ring) -> float:
    """Unsigned shoelace area of a ring (closed or not), px^2."""
    x, y = np.asarray(ring, np.float64).T
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def _edges(ring: Ring) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points (E, 2) of a ring's edges, without repeated vertices or closing duplicate."""
    points = np.asarray(ring, np.float64)
    keep = np.any(points != np.roll(points, 1, axis=0), axis=1) if len(points) > 1 else np.ones(len(points), bool)
    points = points[keep] if keep.any() else points[:1]
    return points, np.roll(points, -1, axis=0)


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z of (a - o) x (b - o): > 0 left turn, < 0 right turn, 0 collinear (broadcasting over leading axes)."""
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (b[..., 0] - o[..., 0])


def _on_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether p, known to be collinear with a-b, lies within the segment's bounding box."""
    return ((np.minimum(a[..., 0], b[..., 0]) <= p[..., 0]) & (p[..., 0] <= np.maximum(a[..., 0], b[..., 0]))
            & (np.minimum(a[..., 1], b[..., 1]) <= p[..., 1]) & (p[..., 1] <= np.maximum(a[..., 1], b[..., 1])))


def segments_intersect(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Whether segments a-b and c-d cross or touch (arrays of points (..., 2), broadcasting)."""
    d1, d2, d3, d4 = _cross(c, d, a), _cross(c, d, b), _cross(a, b, c), _cross(a, b, d)
    proper = (d1 * d2 < 0) & (d3 * d4 < 0)
    touching = ((d1 == 0) & _on_segment(a, c, d)) | ((d2 == 0) & _on_segment(b, c, d)) \
        | ((d3 == 0) & _on_segment(c, a, b)) | ((d4 == 0) & _on_segment(d, a, b))
    return proper | touching


def is_self_intersecting(ring: Ring) -> bool:
    """Whether a ring's edges cross or touch anywhere but at the vertex two neighbours share.

    Non-adjacent edges must not meet at all; adjacent edges must not fold back onto each
    other (a spike). O(n^2) in the vertex count, vectorised.
    """
    start, end = _edges(ring)
    n = len(start)
    if n < 3:
        return False
    step = end - start
    following = np.roll(step, -1, axis=0)
    spikes = (_cross(np.zeros_like(step), step, following) == 0) & (np.sum(step * following, axis=1) < 0)
    if spikes.any():
        return True
    j = np.arange(n)[None, :]
    for first in range(0, n, PAIR_BLOCK):
        i = np.arange(first, min(first + PAIR_BLOCK, n))[:, None]
        apart = (j >= i + 2) & ~((i == 0) & (j == n - 1))  # the first and last edges share vertex 0
        if (apart & segments_intersect(start[i], end[i], start[j], end[j])).any():
            return True
    return False


def _fills_pixel(shape: Shape, width: int, height: int) -> bool:
    """Whether an object, filled even-odd as the masks are, sets any pixel of a width x height image."""
    rings = [ring for ring in shape if len(ring) >= 3]
    if not rings:
        return False
    points = np.concatenate(rings)
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int), (width - 1, height - 1))
    if x1 < x0 or y1 < y0:
        return False
    canvas = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    fill_shape(canvas, tuple(ring - np.array([x0, y0], np.float32) for ring in rings))
    return bool(canvas.any())


def is_degenerate(ring: Ring) -> bool:
    """Whether a ring encloses no area at all: fewer than 3 distinct vertices, or all on one line."""
    points = np.unique(np.asarray(ring, np.float64), axis=0)
    return len(points) < 3 or int(np.linalg.matrix_rank(points - points[0])) < 2


def _object_problems(shape: Shape, width: int, height: int, tiny_px: float) -> list[tuple[str, str]]:
    """(kind, detail) of one object's problems, its rings numbered from 0.

    An empty object is not also reported tiny; a self-intersecting ring has no meaningful
    area and is not reported tiny; a degenerate ring is not tested for crossings.
    """
    degenerate = [is_degenerate(ring) for ring in shape]
    crossing = [not flat and is_self_intersecting(ring) for ring, flat in zip(shape, degenerate)]
    problems: list[tuple[str, str]] = []
    if all(degenerate):
        problems.append(("empty_mask", "encloses no area (degenerate ring(s))"))
    elif not _fills_pixel(shape, width, height):
        problems.append(("empty_mask", f"fills no pixel of the {width}x{height} image"))
    else:
        problems += [("tiny_polygon", f"ring {r} area {area:.1f} px^2 < {tiny_px:g}")
                     for r, (ring, crosses) in enumerate(zip(shape, crossing))
                     if not crosses and (area := ring_area(ring)) < tiny_px]
    problems += [("self_intersecting", f"ring {r} has crossing edges") for r, crosses in enumerate(crossing) if crosses]
    limit = np.array([width, height]) - 0.5
    for r, ring in enumerate(shape):
        beyond = np.maximum(np.maximum(-0.5 - ring, ring - limit), 0).max(axis=1, initial=0.0)
        outside = beyond > OUTSIDE_TOLERANCE_PX
        if outside.any():
            problems.append(("outside_image", f"ring {r}: {int(outside.sum())} vertex(es) outside {width}x{height} "
                                              f"(up to {float(beyond.max()):.1f} px)"))
    return problems


def frame_findings(frame: ExportFrame, image_size: tuple[int, int], masks: np.ndarray, patient_known: bool,
                   classes: Sequence[str], qc: QcParams) -> list[Finding]:
    """Findings about one frame of an export.

    Args:
        frame: the frame and its annotations (polygons are checked one object at a time).
        image_size: (width, height) of the decoded image.
        masks: (C, H, W) bool, the frame's masks (``frame.masks(len(classes))``).
        patient_known: whether ``data.patient_pattern`` matched the original name.
        classes: output channel names, in ``frame.shapes`` order.
        qc: the action of each finding kind and the tiny polygon area.

    Returns:
        The findings whose action is not ``ignore``, in a stable order.
    """
    raw: list[tuple[str, str]] = []
    if tuple(image_size) != (frame.width, frame.height):
        raw.append(("size_mismatch", f"image is {image_size[0]}x{image_size[1]} but its annotations say "
                                     f"{frame.width}x{frame.height}"))
    if not patient_known:
        raw.append(("unknown_patient", f"{frame.name.original_name} does not match {setting('data.patient_pattern')}; "
                                       "treated as its own patient"))
    for name, objects in zip(classes, frame.shapes):
        for index, shape in enumerate(objects):
            raw += [(kind, f"{name} object {index}: {detail}")
                    for kind, detail in _object_problems(shape, frame.width, frame.height, qc.tiny_polygon_px)]
    if frame.annotated and not masks.any() and not any(kind == "empty_mask" for kind, _ in raw):
        raw.append(("empty_mask", "annotated, but every class mask is empty"))
    return _keep(((kind, frame.image_path.name, detail) for kind, detail in raw), qc)


def export_findings(manifest: pd.DataFrame, pixel_digests: dict[str, str], classes: Sequence[str],
                    qc: QcParams) -> list[Finding]:
    """Findings about the export as a whole.

    Args:
        manifest: the pull manifest (``frame_id``, ``original_name``, ``export_file``, ``px_<class>``).
        pixel_digests: :func:`pixel_digest` of each frame id's decoded image.
        classes: output channel names.
        qc: the action of each finding kind.

    Returns:
        ``duplicate_frame`` for identical pixels under different original names (Roboflow's
        augmented copies of one original are expected, not reported), and
        ``class_without_examples`` for a class with no pixel in any frame; ``ignore`` dropped.
    """
    raw: list[tuple[str, str, str]] = []
    table = manifest.assign(digest=manifest["frame_id"].map(pixel_digests)).dropna(subset=["digest"])
    for _, group in table.groupby("digest", sort=True):
        if group["original_name"].nunique() > 1:
            names = ", ".join(f"{row.export_file} ({row.original_name})" for row in group.itertuples())
            raw.append(("duplicate_frame", "", f"same pixels under {len(group)} names: {names}"))
    for name in classes:
        column = f"px_{name}"
        if column not in manifest.columns or manifest[column].sum() == 0:
            raw.append(("class_without_examples", "", f"class {name} has no annotated pixel in "
                                                     f"{len(manifest)} frame(s)"))
    return _keep(raw, qc)


def reader_findings(found: Iterable[ReadFinding], qc: QcParams) -> list[Finding]:
    """The readers' findings (what they read but could not use), each with its configured action, ``ignore`` dropped."""
    return _keep(((finding.kind, finding.frame, finding.detail) for finding in found), qc)


def _keep(raw: Iterable[tuple[str, str, str]], qc: QcParams) -> list[Finding]:
    """Findings from (kind, frame, detail), each with its configured action, ``ignore`` dropped."""
    findings = (Finding(kind, qc.action(kind), frame, detail) for kind, frame, detail in raw)
    return [finding for finding in findings if finding.action != "ignore"]


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    """The findings whose action is ``error``."""
    return [finding for finding in findings if finding.action == "error"]


def summarise(findings: Sequence[Finding]) -> str:
    """Console lines: the total, then per action and kind the count and a first example."""
    if not findings:
        return "qc: no findings"
    actions = Counter(f.action for f in findings)
    counts = Counter((f.action, f.kind) for f in findings)
    firsts: dict[tuple[str, str], Finding] = {}
    for finding in findings:
        firsts.setdefault((finding.action, finding.kind), finding)
    lines = [f"qc: {len(findings)} finding(s): {actions['error']} error, {actions['warn']} warn"]
    width = max(len(kind) for _, kind in firsts)
    for action, kind in sorted(firsts, key=lambda key: (key[0] != "error", key[1])):
        first = firsts[action, kind]
        example = f"{first.frame or 'export'}: {first.detail}"
        lines.append(f"  {action:<5} {kind:<{width}} {counts[action, kind]:>5}  e.g. {example}")
    return "\n".join(lines)


def write_report(findings: Sequence[Finding], path: Path) -> None:
    """Writes every finding and the counts per kind and action as JSON, atomically.

    The file is ``{"counts": {kind: {action: n}}, "findings": [{"kind", "action", "frame", "detail"}, ...]}``.
    """
    counts: dict[str, dict[str, int]] = {}
    for finding in findings:
        per_kind = counts.setdefault(finding.kind, {})
        per_kind[finding.action] = per_kind.get(finding.action, 0) + 1
    write_json_atomically(path, {"counts": counts, "findings": [asdict(finding) for finding in findings]})


def read_report(path: Path) -> list[Finding]:
    """The findings of a report written by :func:`write_report`."""
    return [Finding(**item) for item in json.loads(Path(path).read_text())["findings"]]


__all__ = ["Finding", "blocking", "export_findings", "frame_findings", "is_degenerate", "is_self_intersecting",
           "pixel_digest", "read_report", "reader_findings", "ring_area", "segments_intersect", "summarise", "write_report"]
