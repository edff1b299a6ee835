"""``trus upload``: de-identified frames to a Roboflow project; ``trus upload-corrections``: clinicians'
corrected masks back to it (key from ROBOFLOW_API_KEY for both)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import one_line_errors, say
from pipeline.files.atomic import write_json_atomically
from pipeline.layout import IMAGES

CASE_SUFFIX = ".trus-case.json"  # app.case_file.CASE_SUFFIX, without importing the app to parse the command line


def upload(
    folder: Annotated[Path, typer.Argument(help="A `trus frames` output folder (its images/) or a folder of PNG/JPEG.")],
    workspace: Annotated[str, typer.Option(help="Roboflow workspace slug.")],
    project: Annotated[str, typer.Option(help="Roboflow project slug.")],
    batch: Annotated[str | None, typer.Option(help="Roboflow upload batch name.")] = None,
    timeout: Annotated[float, typer.Option(min=1.0, help="Longest wait for Roboflow per image, seconds.")] = 120.0,
) -> None:
    """Upload de-identified frames to a Roboflow project (key from ROBOFLOW_API_KEY)."""
    images = folder / IMAGES if (folder / IMAGES).is_dir() else folder
    with one_line_errors():
        from pipeline.ingest.roboflow.upload import upload_frames

        count = upload_frames(images, workspace, project, timeout, batch_name=batch)
    say(f"upload: {count} image(s) from {images} -> Roboflow {workspace}/{project}")


def upload_corrections(
    folder: Annotated[Path, typer.Argument(help="A corrections folder (the app's File › Export corrections…) or a "
                                                "case file (*.trus-case.json): its edited frames.")],
    workspace: Annotated[str, typer.Option(help="Roboflow workspace slug.")],
    project: Annotated[str, typer.Option(help="Roboflow project slug.")],
    tag: Annotated[str, typer.Option(help="Tag added to every corrected image, for the team's review.")]
    = "clinician-corrected",
    timeout: Annotated[float, typer.Option(min=1.0, help="Longest wait for Roboflow per frame, seconds.")] = 120.0,
    report: Annotated[Path | None, typer.Option(help="Where to write the JSON report (default: "
                                                     "FOLDER.upload_report.json beside the folder).")] = None,
) -> None:
    """Send clinicians' corrected masks to the Roboflow project: each image tagged, its annotation replaced.

    Prints which frames were sent and which not (and why), writes that beside FOLDER as JSON, exits 1 if any was not.
    """
    with one_line_errors():
        from pipeline.files.output_folder import refuse_overlap
        from pipeline.ingest.roboflow.corrections import upload_corrections as send_corrections

        report_path = report or default_report_path(folder)
        refuse_overlap(report_path, [folder])  # the report never goes into (or replaces) the source folder
        with corrections_folder(folder) as sent:
            outcome = send_corrections(sent, workspace, project, tag, timeout)
    sent = len(outcome.outcomes) - len(outcome.failed)
    say(f"upload-corrections: {sent} of {len(outcome.outcomes)} frame(s) from {folder} sent to Roboflow "
        f"{workspace}/{project} (tagged {tag!r}, annotation replaced)")
    for frame in outcome.outcomes:
        if frame.sent:
            say(f"  sent      {frame.file_name} (image {frame.image_id})")
        else:
            say(f"  not sent  {frame.file_name}: {frame.reason}")
    try:
        write_json_atomically(report_path, outcome.as_json())
        say(f"report: {report_path}")
    except OSError as error:
        say(f"the report could not be written to {report_path} ({error}); it is printed above", "warning")
    if outcome.stopped:
        say(f"the upload stopped: {outcome.stopped}", "error")
    if outcome.failed:
        say(f"{len(outcome.failed)} frame(s) not sent; fix the cause and run again (sent frames are sent again "
            "harmlessly: the tag is added once, the annotation replaced)", "error")
        raise typer.Exit(1)


@contextmanager
def corrections_folder(path: Path) -> Iterator[Path]:
    """``path`` itself for a corrections folder; for a case file, a temporary corrections folder of its edited
    frames (removed afterwards)."""
    if not path.name.endswith(CASE_SUFFIX):
        yield path
        return
    from app.case_file import case_corrections  # the case file's format belongs to the app (no Qt needed)
    from pipeline.corrections import write_corrections

    frames = case_corrections(path)
    with tempfile.TemporaryDirectory(prefix="trus-corrections-") as temporary:
        yield write_corrections(Path(temporary) / "corrections", frames)


def default_report_path(folder: Path) -> Path:
    """``FOLDER.upload_report.json`` beside the corrections folder (the source folder itself is never written)."""
    resolved = folder.resolve()
    return resolved.with_name(f"{resolved.name}.upload_report.json")
