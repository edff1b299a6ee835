"""``trus ingest``: normalise an export as the pull stage does, to check it by hand."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Force, console, fail, one_line_errors
from pipeline.config import DataParams, QcParams
from pipeline.files.output_folder import OutputFolderError, output_folder, refuse_overlap

COMMAND = "trus ingest"


def data_params(source: str, export_format: str | None, classes: str | None,
                frames_manifest: Path | None) -> tuple[DataParams, QcParams]:
    """``data`` and ``qc`` params for ``trus ingest``: params.yaml's when present, with the options applied.

    Raises:
        ParamsError: a bad params.yaml or option value; RoboflowError: a malformed ``roboflow:`` source.
    """
    from pipeline.config import PARAMS_FILE, Params, load_params
    from pipeline.ingest.roboflow.common import parse_roboflow_source

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


def check_report_path(report: Path, sources: list[Path], force: bool) -> None:
    """Refuses a report path that overlaps a source, or that exists and is not an earlier QC report replaced with --force.

    Raises:
        OutputFolderError: naming the file and how to proceed.
    """
    refuse_overlap(report, sources)
    if not report.exists() and not report.is_symlink():
        return
    if not force:
        raise OutputFolderError(f"{report}: the QC report file exists; choose another --report, or add --force to "
                                f"replace an earlier report of `{COMMAND}`")
    try:
        earlier = json.loads(report.read_text())
        is_report = isinstance(earlier, dict) and set(earlier) == {"counts", "findings"}
    except (OSError, ValueError):
        is_report = False
    if not is_report:
        raise OutputFolderError(f"{report}: exists and is not a QC report; refusing to overwrite it, even with --force")


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
    force: Force = False,
) -> None:
    """Normalise an export as the pull stage does, to check it by hand: frames, masks, manifest, QC report.

    The key for roboflow: sources comes only from ROBOFLOW_API_KEY. Patient pattern, QC
    actions and the unannotated policy come from params.yaml when it is in the current folder.
    """
    from pipeline.ingest.qc import summarise
    from pipeline.ingest.source import QualityError, ingest_summary
    from pipeline.ingest.source import ingest as run_ingest

    report = report or out.with_name(f"{out.name}.qc.json")
    with one_line_errors():
        data, qc = data_params(source, export_format, classes, frames_manifest)
        sources = [Path(data.export_dir)] if data.source == "local" else []
        sources += [frames_manifest] if frames_manifest else []
        check_report_path(report, [*sources, out], force)
        into = functools.partial(output_folder, command=COMMAND, sources=sources, force=force)
        try:
            result = run_ingest(data, qc, out, report, into=into)
        except QualityError as error:
            console.print(summarise(error.findings), highlight=False, soft_wrap=True)
            raise fail(str(error)) from None
    console.print(summarise(result.findings), highlight=False, soft_wrap=True)
    console.print(ingest_summary("ingest", data, result, out, report), highlight=False, soft_wrap=True)
