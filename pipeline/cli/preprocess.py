"""``trus preprocess``: what the network sees for each frame, and where it came from.

Uses the one preprocessing implementation (:func:`pipeline.imaging.preprocessing.preprocess_frame`)
with the spec of params.yaml or of an exported model, and writes the processed frame with a
JSON of its geometry, so a person can check crop, letterbox and filter on any scanner's frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.common import Force, expand_inputs, one_line_errors, say, unique_stems
from pipeline.files.atomic import write_json_atomically
from pipeline.files.output_folder import output_folder
from pipeline.imaging.frames import read_frame
from pipeline.imaging.geometry import FrameGeometry
from pipeline.imaging.png import write_png_atomically
from pipeline.imaging.preprocessing import preprocess_frame
from pipeline.imaging.spec import PreprocessSpec


@dataclass(frozen=True)
class Preview:
    """The files :func:`preview_frame` wrote."""

    image: Path
    geometry: Path


def geometry_record(geometry: FrameGeometry, spacing_mm: tuple[float, float] | None) -> dict[str, Any]:
    """A person-readable description of a frame's geometry.

    Returns:
        ``crop_box`` [x, y, width, height] in original px; ``scale`` [x, y] network px per
        original px; ``padding`` {left, top, right, bottom} in network px; ``content_size``
        [width, height] of the resized crop in network px; ``size`` (network side, px);
        ``frame_size`` [width, height] in original px; ``spacing_mm`` [x, y] mm per
        original px and ``network_spacing_mm`` [x, y] mm per network px (null when unknown).
    """
    g = geometry
    network_spacing = g.network_spacing_mm(spacing_mm)
    return {
        "frame_size": [g.frame_width, g.frame_height],
        "crop_box": [g.crop_x, g.crop_y, g.crop_width, g.crop_height],
        "size": g.size,
        "content_size": [g.content_width, g.content_height],
        "scale": [g.scale_x, g.scale_y],
        "padding": {"left": g.pad_left, "top": g.pad_top, "right": g.size - g.pad_left - g.content_width,
                    "bottom": g.size - g.pad_top - g.content_height},
        "spacing_mm": list(spacing_mm) if spacing_mm else None,
        "network_spacing_mm": list(network_spacing) if network_spacing else None,
    }


def preview_frame(path: Path, spec: PreprocessSpec, out_dir: Path, frame_index: int = 0,
                  spec_source: str = "", stem: str | None = None) -> Preview:
    """Preprocesses one frame as training and the app do; writes ``<stem>_processed.png`` and ``<stem>_geometry.json``.

    Args:
        path: a frame file (PNG, JPEG, BMP, TIFF or DICOM); a DICOM's ultrasound region is
            used by ``crop: dicom``, as in training and in the app.
        spec: the preprocessing spec.
        out_dir: an existing output folder.
        frame_index: the frame of a multi-frame DICOM, from 0.
        spec_source: where ``spec`` came from (params.yaml, a model), recorded in the JSON.
        stem: output name stem; the file's own stem (``_NNNN`` appended for ``frame_index`` > 0) when None.

    Raises:
        FrameReadError: unreadable frame, or no frame ``frame_index``.
        ValueError: the spec's crop box misses the frame.
    """
    frame = read_frame(path, frame_index)
    processed = preprocess_frame(frame.gray, spec, region_box=frame.region_box)
    stem = stem or path.stem
    stem = stem if frame_index == 0 else f"{stem}_{frame_index:04d}"
    image_path, json_path = out_dir / f"{stem}_processed.png", out_dir / f"{stem}_geometry.json"
    write_png_atomically(image_path, processed.image)
    write_json_atomically(json_path, {"frame": path.name, "frame_index": frame_index, "spec_source": spec_source,
                                      "preprocess": spec.to_dict(),
                                      **geometry_record(processed.geometry, frame.spacing_mm)})
    return Preview(image_path, json_path)


def preprocessing_spec(model: Path | None) -> tuple[PreprocessSpec, str]:
    """The spec to preview and where it came from: the model's, else params.yaml's (current folder), else the defaults.

    Raises:
        ModelLoadError, ParamsError: an unreadable model or params.yaml.
    """
    from pipeline.config import PARAMS_FILE, Params, load_params

    if model is not None:
        from pipeline.inference.predictor import Segmenter
        return Segmenter(model).contract.preprocess, str(model)
    if PARAMS_FILE.is_file():
        return load_params().preprocess, str(PARAMS_FILE)
    return Params().preprocess, "defaults"


def preprocess(
    frames: Annotated[list[Path], typer.Argument(help="Frame files (PNG, JPEG, BMP, TIFF or DICOM) or folders.")],
    out: Annotated[Path, typer.Option(help="New folder for <stem>_processed.png and <stem>_geometry.json.")] = Path("preview"),
    model: Annotated[Path | None, typer.Option(help="Use this exported model's preprocessing (default: params.yaml's).")] = None,
    index: Annotated[int, typer.Option("--frame-index", min=0, help="Frame of a multi-frame DICOM.")] = 0,
    force: Force = False,
) -> None:
    """Show what the network sees: the processed frames and their geometry (crop box, scale, padding, spacing)."""
    with one_line_errors():
        spec, source = preprocessing_spec(model)
        files = expand_inputs(frames)
        with output_folder(out, "trus preprocess", sources=[*frames, *([model] if model else [])], force=force) as staging:
            for path, stem in unique_stems(files):
                preview_frame(path, spec, staging, index, source, stem)
    say(f"preprocess: {len(files)} frame(s) -> {out} ({spec.size}x{spec.size}, crop {spec.crop}, "
        f"{spec.resize}, filter {spec.filter.method}; spec from {source})")
