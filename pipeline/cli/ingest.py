"""``trus ingest``: normalise an export as the pull stage does, to check it by hand.

Its messages name its options (``--classes``, ``--qc outside_image=warn``), not params.yaml
keys: the command runs inside :func:`pipeline.config.named_by_options` with :data:`OPTIONS`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Force, fail, one_line_errors, say
from pipeline.config import DataParams, Params, ParamsError, QcParams, named_by_options
from pipeline.files.output_folder import OutputFolderError, output_folder, refuse_overlap

COMMAND = "trus ingest"
OPTIONS = {"data.format": "--format", "data.classes": "--classes", "data.patient_pattern": "--patient-pattern",
           "data.unannotated": "--unannotated", "data.frames_manifest": "--frames-manifest", "qc.*": "--qc"}
"""The params keys that ``trus ingest``'s options set, for messages (see :func:`pipeline.config.setting`)."""


def params_file() -> Params:
    """params.yaml in the current folder when present (its errors name its keys), else the defaults.

    Raises:
        ParamsError: a bad params.yaml.
    """
    from pipeline.config import PARAMS_FILE, load_params

    return load_params() if PARAMS_FILE.is_file() else Params()


def qc_params(qc: QcParams, assignments: list[str]) -> QcParams:
    """``qc`` with the ``--qc KIND=ACTION`` assignments applied (later ones win).

    Raises:
        ParamsError: not ``KIND=VALUE``, a kind that QcParams does not have, or a bad value.
    """
    fields = {f.name for f in dataclasses.fields(QcParams)}
    changes: dict[str, object] = {}
    for assignment in assignments:
        kind, equals, value = (part.strip() for part in assignment.partition("="))
        if not equals or not kind:
            raise ParamsError(f"--qc {assignment!r}: expected KIND=ACTION, e.g. --qc outside_image=warn")
        if kind not in fields:
            raise ParamsError(f"--qc {kind}: no such finding kind; known: {', '.join(sorted(fields))}")
        if kind == "tiny_polygon_px":
            try:
                changes[kind] = float(value)
            except ValueError:
                raise ParamsError(f"--qc tiny_polygon_px must be a number (px^2), got {value!r}") from None
        else:
            changes[kind] = value
    return dataclasses.replace(qc, **changes)


def data_params(params: Params, source: str, export_format: str | None, classes: str | None,
                frames_manifest: Path | None, patient_pattern: str | None = None,
                unannotated: str | None = None) -> DataParams:
    """``data`` params for ``trus ingest``: ``params``' with the options applied.

    Raises:
        ParamsError: a bad option value; RoboflowError: a malformed ``roboflow:`` source.
    """
    from pipeline.ingest.roboflow.common import parse_roboflow_source

    data = dataclasses.replace(params.data, frames_manifest=str(frames_manifest) if frames_manifest else None)
    overrides = {"classes": tuple(name.strip() for name in classes.split(",") if name.strip()) if classes else None,
                 "patient_pattern": patient_pattern, "unannotated": unannotated}
    data = dataclasses.replace(data, **{key: value for key, value in overrides.items() if value is not None})
    if source.startswith("roboflow:"):
        ref = parse_roboflow_source(source)
        roboflow = dataclasses.replace(data.roboflow, workspace=ref.workspace, project=ref.project,
                                       version=ref.version)
        return dataclasses.replace(data, source="roboflow", roboflow=roboflow, format=export_format or data.format)
    return dataclasses.replace(data, source="local", export_dir=source, format=export_format or "auto")


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
    classes: Annotated[str | None, typer.Option(help="Output channels by class name, comma-separated, at most 8 "
                                                "(default: params.yaml's data.classes).")] = None,
    report: Annotated[Path | None, typer.Option(help="QC report JSON (default: OUT.qc.json).")] = None,
    frames_manifest: Annotated[Path | None, typer.Option(help="A `trus frames` manifest.csv: patient keys and "
                                                         "spacing joined by original name.")] = None,
    qc: Annotated[list[str] | None, typer.Option("--qc", metavar="KIND=ACTION", help="What a QC finding kind "
                                                 "does: ignore, warn or error (repeatable; e.g. --qc "
                                                 "outside_image=warn; default: params.yaml's qc).")] = None,
    patient_pattern: Annotated[str | None, typer.Option(help="Regex with a (?P<patient>...) group, on the "
                                                        "original file name (default: params.yaml's).")] = None,
    unannotated: Annotated[str | None, typer.Option(help="Frames without annotations: keep (background) or "
                                                    "drop (default: params.yaml's).")] = None,
    force: Force = False,
) -> None:
    """Normalise an export as the pull stage does, to check it by hand: frames, masks, manifest, QC report.

    The key for roboflow: sources comes only from ROBOFLOW_API_KEY. Settings without an
    option here come from params.yaml when it is in the current folder, else the defaults.
    """
    report = report or out.with_name(f"{out.name}.qc.json")
    with one_line_errors():
        from pipeline.ingest.qc import summarise
        from pipeline.ingest.source import QualityError, ingest_summary
        from pipeline.ingest.source import ingest as run_ingest

        params = params_file()
        with named_by_options(OPTIONS):
            data = data_params(params, source, export_format, classes, frames_manifest, patient_pattern, unannotated)
            checks = qc_params(params.qc, qc or [])
            sources = [Path(data.export_dir)] if data.source == "local" else []
            sources += [frames_manifest] if frames_manifest else []
            check_report_path(report, [*sources, out], force)
            into = functools.partial(output_folder, command=COMMAND, sources=sources, force=force)
            try:
                result = run_ingest(data, checks, out, report, into=into)
            except QualityError as error:
                say(summarise(error.findings))
                raise fail(str(error)) from None
    say(summarise(result.findings))
    say(ingest_summary("ingest", data, result, out, report))
