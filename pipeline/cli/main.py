"""The ``trus`` command line: ``sample``, ``segment``, ``preprocess``, ``ingest``, ``frames``, ``upload``.

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
PSEUDONYM_KEY_VARIABLE = "TRUS_PSEUDONYM_KEY"


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
    variant: Annotated[str, typer.Option(help="Scanner variant: default, probe_bottom, wide, wide_bottom, "
                                         "logo_calipers, colour, jpeg, size_800x600, size_1024x768, worst_case, "
                                         "or fleet (one per patient).")] = "default",
) -> None:
    """Write SYNTHETIC TRUS phantoms as a Roboflow COCO Segmentation export (not patient data)."""
    from pipeline.synthetic import SampleSpec, write_sample_export

    try:
        counts = write_sample_export(out, seed, SampleSpec(n_patients=patients, frames_per_patient=frames_per_patient,
                                                           variant=variant))
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
    from pipeline.cli.segment import AREAS_FILE, expand_inputs, segment_files, unique_stems

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


@app.command()
def preprocess(
    frame: Annotated[Path, typer.Argument(help="A frame file (PNG, JPEG, BMP, TIFF or DICOM).")],
    out: Annotated[Path, typer.Option(help="Folder for <stem>_processed.png and <stem>_geometry.json.")] = Path("preview"),
    model: Annotated[Path | None, typer.Option(help="Use this exported model's preprocessing (default: params.yaml's).")] = None,
    index: Annotated[int, typer.Option("--frame-index", min=0, help="Frame of a multi-frame DICOM.")] = 0,
) -> None:
    """Show what the network sees: the processed frame and its geometry (crop box, scale, padding, spacing)."""
    from pipeline.config import PARAMS_FILE, Params, load_params
    from pipeline.cli.preprocess import preview_frame

    try:
        if model is not None:
            from pipeline.inference.predictor import Segmenter
            spec, source = Segmenter(model).contract.preprocess, str(model)
        elif PARAMS_FILE.is_file():
            spec, source = load_params().preprocess, str(PARAMS_FILE)
        else:
            spec, source = Params().preprocess, "defaults"
        written = preview_frame(frame, spec, out, index, source)
    except (ValueError, OSError) as error:  # FrameReadError, ModelLoadError, ParamsError
        raise fail(str(error)) from None
    console.print(f"preprocess: {frame} -> {written.image} ({spec.size}x{spec.size}, crop {spec.crop}, "
                  f"{spec.resize}, filter {spec.filter.method}; spec from {source}), geometry {written.geometry}",
                  highlight=False)


def _data_params(source: str, export_format: str | None, classes: str | None, frames_manifest: Path | None) -> tuple:
    """``data`` and ``qc`` params for ``trus ingest``: params.yaml's when present, with the options applied."""
    import dataclasses

    from pipeline.config import PARAMS_FILE, Params, load_params
    from pipeline.ingest.roboflow.client import parse_roboflow_source

    params = load_params() if PARAMS_FILE.is_file() else Params()
    data = dataclasses.replace(params.data, frames_manifest=str(frames_manifest) if frames_manifest else None)
    if classes is not None:
        data = dataclasses.replace(data, classes=tuple(name.strip() for name in classes.split(",") if name.strip()))
    if source.startswith("roboflow:"):
        ref = parse_roboflow_source(source)
        roboflow = dataclasses.replace(data.roboflow, workspace=ref.workspace, project=ref.project,
                                       version=ref.version)
        data = dataclasses.replace(data, source="roboflow", roboflow=roboflow, format=export_format or data.format)
    else:
        data = dataclasses.replace(data, source="local", export_dir=source, format=export_format or "auto")
    return data, params.qc


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="An export: a .zip, a folder, or roboflow:WORKSPACE/PROJECT/VERSION.")],
    out: Annotated[Path, typer.Option(help="New folder for images/, masks/, manifest.csv, source.json.")],
    export_format: Annotated[str | None, typer.Option("--format", help="coco-segmentation, png-mask-semantic, "
                                                      "yolov8 or auto (local default: auto; Roboflow: params.yaml's).")] = None,
    classes: Annotated[str | None, typer.Option(help="Output channels by class name, comma-separated "
                                                "(default: params.yaml's data.classes).")] = None,
    report: Annotated[Path | None, typer.Option(help="QC report JSON (default: OUT.qc.json).")] = None,
    frames_manifest: Annotated[Path | None, typer.Option(help="A `trus frames` manifest.csv: patient keys and "
                                                         "spacing joined by original name.")] = None,
) -> None:
    """Normalise an export as the pull stage does, to check it by hand: frames, masks, manifest, QC report.

    The key for roboflow: sources comes only from ROBOFLOW_API_KEY. Patient pattern, QC
    actions and the unannotated policy come from params.yaml when it is in the current folder.
    """
    from pipeline.ingest.qc import summarise
    from pipeline.ingest.source import QualityError, ingest_summary
    from pipeline.ingest.source import ingest as run_ingest

    report = report or out.with_name(f"{out.name}.qc.json")
    try:
        data, qc = _data_params(source, export_format, classes, frames_manifest)
        result = run_ingest(data, qc, out, report)
    except QualityError as error:
        console.print(summarise(error.findings), highlight=False, soft_wrap=True)
        raise fail(str(error)) from None
    except (ValueError, OSError) as error:  # IngestError, RoboflowError, ParamsError, FrameReadError
        raise fail(str(error)) from None
    console.print(summarise(result.findings), highlight=False, soft_wrap=True)
    console.print(ingest_summary("ingest", data, result, out, report), highlight=False, soft_wrap=True)


@app.command()
def frames(
    raw_dir: Annotated[Path, typer.Argument(help="Scanner output: one folder per patient (DICOM, PNG, JPEG, BMP, TIFF).")],
    out: Annotated[Path, typer.Option(help="New folder for images/*.png and manifest.csv (outside RAW_DIR).")],
    channel: Annotated[int | None, typer.Option(min=0, help="TIFF channel to read (e.g. FLAIR) instead of grey.")] = None,
    blank: Annotated[bool, typer.Option(help="Zero DICOM pixels outside the ultrasound regions.")] = True,
) -> None:
    """De-identified frames for labelling, and a manifest (pseudonymous patient, study, spacing).

    Pseudonyms are keyed by the secret in TRUS_PSEUDONYM_KEY (at least 16 bytes); keep it
    to give the same patient the same key next time. No name, id, date or path is written.
    """
    import os

    from pipeline.ingest.raw_scans import MIN_SECRET_BYTES, extract_frames

    secret = os.environ.get(PSEUDONYM_KEY_VARIABLE, "").encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise fail(f"{PSEUDONYM_KEY_VARIABLE} must hold a secret of at least {MIN_SECRET_BYTES} bytes "
                   f"(e.g. export {PSEUDONYM_KEY_VARIABLE}=$(openssl rand -hex 32)); keep it safe and reuse it")
    try:
        report = extract_frames(raw_dir, out, secret, channel, blank_outside_region=blank)
    except (ValueError, OSError) as error:
        raise fail(str(error)) from None
    for message in report.errors:
        console.print(f"[yellow]skipped:[/yellow] {message}", highlight=False, soft_wrap=True)
    manifest = report.manifest
    console.print(f"frames: {len(manifest)} frame(s) of {manifest['patient'].nunique()} patient(s) -> {out} "
                  f"({len(report.errors)} unreadable, {report.ignored} not images, {report.duplicates} duplicates)",
                  highlight=False)
    if report.unblanked_frames:
        console.print(f"[yellow]warning:[/yellow] {report.unblanked_frames} frame(s) keep all their pixels (no DICOM "
                      "ultrasound region): check them for burned-in names or dates before uploading", highlight=False)
    if report.mixed_folders:
        console.print(f"[yellow]warning:[/yellow] {report.mixed_folders} patient folder(s) gave more than one patient "
                      "key (DICOM PatientID differs within the folder)", highlight=False)


@app.command()
def upload(
    folder: Annotated[Path, typer.Argument(help="A `trus frames` output folder (its images/) or a folder of PNG/JPEG.")],
    workspace: Annotated[str, typer.Option(help="Roboflow workspace slug.")],
    project: Annotated[str, typer.Option(help="Roboflow project slug.")],
    batch: Annotated[str | None, typer.Option(help="Roboflow upload batch name.")] = None,
    timeout: Annotated[float, typer.Option(min=1.0, help="Longest wait for Roboflow per image, seconds.")] = 120.0,
) -> None:
    """Upload de-identified frames to a Roboflow project (key from ROBOFLOW_API_KEY)."""
    from pipeline.ingest.roboflow.upload import upload_frames
    from pipeline.layout import IMAGES

    images = folder / IMAGES if (folder / IMAGES).is_dir() else folder
    try:
        count = upload_frames(images, workspace, project, timeout, batch_name=batch)
    except (ValueError, OSError) as error:  # RoboflowError is a ValueError
        raise fail(str(error)) from None
    console.print(f"upload: {count} image(s) from {images} -> Roboflow {workspace}/{project}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
