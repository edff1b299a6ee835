"""``trus upload``: de-identified frames to a Roboflow project (key from ROBOFLOW_API_KEY)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import one_line_errors, say
from pipeline.layout import IMAGES


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
