"""The ``trus`` command line: ``trus sample``, ``trus segment``.

Errors print one line naming the file and the problem and exit non-zero, with no
traceback (``TRUS_DEBUG=1`` shows it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import track

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Prostate TRUS segmentation tools.")
console = Console(stderr=True)
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Prints ``error: message`` to stderr and returns the Exit to raise."""
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Folder to write the export into (must be empty).")] = Path("data"),
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives identical files.")] = 0,
    patients: Annotated[int, typer.Option(min=1, help="Synthetic patients.")] = 24,
    frames_per_patient: Annotated[int, typer.Option(min=1, help="Frames per patient.")] = 5,
) -> None:
    """Write SYNTHETIC TRUS phantoms as a Roboflow COCO Segmentation export (not patient data)."""
    from pipeline.synthetic import SampleSpec, write_sample_export

    try:
        counts = write_sample_export(out, seed, SampleSpec(n_patients=patients, frames_per_patient=frames_per_patient))
    except (ValueError, OSError) as error:
        raise fail(str(error)) from None
    console.print(f"sample: wrote SYNTHETIC export to {out} (seed {seed}): "
                  + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def segment(
    inputs: Annotated[list[Path], typer.Argument(help="Frame files (PNG, JPEG, BMP, TIFF, DICOM) or folders.")],
    model: Annotated[Path, typer.Option(help="Exported ONNX model.")] = Path("models/model.onnx"),
    out: Annotated[Path, typer.Option(help="Output folder for masks, overlays and areas.csv.")] = Path("segmentations"),
    threshold: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Probability threshold (default: the model's).")] = None,
) -> None:
    """Segment frames: a mask PNG and an overlay PNG per frame at its own size, and areas.csv."""
    from pipeline.imaging.frames import FrameReadError
    from pipeline.inference.predictor import ModelLoadError, Segmenter
    from pipeline.segment import AREAS_FILE, expand_inputs, segment_files, unique_stems

    try:
        segmenter = Segmenter(model)
        files = expand_inputs(inputs)
    except (ModelLoadError, FrameReadError) as error:
        raise fail(str(error)) from None
    stems = list(unique_stems(files))
    result = segment_files(segmenter, files, out, threshold,
                           progress=track(stems, description="segmenting", console=console, transient=True))
    for message in result.failures:
        console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    done = len({row["output"] for row in result.areas})
    console.print(f"segment: {done} frame(s) -> {out} (masks, overlays, {AREAS_FILE})")
    if result.failures:
        raise typer.Exit(EXIT_BAD_INPUT)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
