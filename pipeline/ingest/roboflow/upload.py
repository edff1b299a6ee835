"""Uploading de-identified frames to a Roboflow project through the real ``roboflow`` client.

Same guards as :mod:`pipeline.ingest.roboflow.client`: the client runs in a child interpreter that
is killed when it stalls, its output is discarded, and every message has the key replaced by
``***``. The caller guarantees the frames are de-identified (``trus frames`` output); this module
uploads file names and pixels as they are.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.ingest.roboflow.child import ClientFailure, Observer, describe_failure, open_project, send
from pipeline.ingest.roboflow.client import run_client
from pipeline.ingest.roboflow.common import SLUG, RoboflowError, api_key_from_env

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def upload_frames(folder: Path, ref_workspace: str, project: str, timeout_s: float, api_key: str | None = None,
                  batch_name: str | None = None) -> int:
    """Uploads every PNG/JPEG directly in ``folder`` (sorted by name) to a Roboflow project.

    Args:
        folder: de-identified frames; sub-folders and other files are ignored.
        ref_workspace: the workspace slug.
        project: the project slug.
        timeout_s: the longest wait for Roboflow: for the key/workspace/project checks plus the
            first image, then for each further image (the clock restarts after every upload).
        api_key: the key; None reads ``ROBOFLOW_API_KEY``.
        batch_name: Roboflow upload batch; None uses the client's default ("Pip Package Upload").

    Returns:
        The number of images uploaded (Roboflow's duplicates count as uploaded).

    Raises:
        RoboflowError: no images, bad key, unknown workspace/project, a refused image, Roboflow
            unreachable, or the deadline; the message says how many images were uploaded before.
    """
    key = api_key or api_key_from_env()
    folder = Path(folder)
    if not (SLUG.fullmatch(ref_workspace) and SLUG.fullmatch(project)):
        raise RoboflowError(f"not a Roboflow workspace/project: {ref_workspace!r}/{project!r} (URL slugs)")
    if not folder.is_dir():
        raise RoboflowError(f"{folder}: no such folder of frames to upload")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise RoboflowError(f"{folder}: no PNG/JPEG images to upload")
    return run_client(_upload_job, (ref_workspace, project, [str(p) for p in images], batch_name), key, timeout_s,
                      f"the upload of {folder} to {ref_workspace}/{project}", progress_extends_deadline=True)


def _upload_job(observer: Observer, api_key: str, workspace: str, project: str, images: list[str],
                batch_name: str | None) -> int:
    """Child side: opens the project, uploads one image at a time and reports each as progress."""
    target = open_project(observer, api_key, workspace, project)
    for index, image in enumerate(images):
        name = Path(image).name
        observer.phase = f"uploading {name}"
        try:
            target.upload(image_path=image, batch_name=batch_name, num_retry_uploads=0)
        except Exception as error:  # noqa: BLE001 - mapped to one line, with what was uploaded before
            status = getattr(error, "status_code", None)  # the client's ImageUploadError carries it
            if status in (401, 403):
                message = f"Roboflow rejected the API key (HTTP {status}) while uploading {name}"
            elif status is not None:
                message = f"Roboflow refused {name} (HTTP {status}): {' '.join(str(error).split())[:200]}"
            else:
                message = describe_failure(error, observer)
            raise ClientFailure(f"{message} ({index} of {len(images)} images were uploaded before)") from None
        send(observer.channel, ["progress", index + 1])
    return len(images)
