"""Downloading a pinned Roboflow dataset version through the guarded client, all or nothing."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.files.atomic import staged_folder
from pipeline.ingest.roboflow.child import Observer, open_project
from pipeline.ingest.roboflow.client import run_client
from pipeline.ingest.roboflow.common import RoboflowError, RoboflowRef, api_key_from_env

_FORMAT = re.compile(r"[a-z0-9][a-z0-9-]*")


def download_export(ref: RoboflowRef, export_format: str, destination: Path, timeout_s: float,
                    api_key: str | None = None) -> Path:
    """Downloads and unpacks a dataset version's export into ``destination``, all or nothing.

    The client works in a staging folder beside ``destination`` (:func:`staged_folder`); only a
    download that finished and whose zip extracted cleanly becomes ``destination``. Any
    failure leaves no folder behind.

    Args:
        ref: the pinned dataset version.
        export_format: Roboflow's format name: ``coco-segmentation``, ``png-mask-semantic``, ``yolov8``...
        destination: the unpacked export; must not exist; its parent is created.
        timeout_s: hard deadline for the whole download (export generation included), seconds.
        api_key: the key; None reads ``ROBOFLOW_API_KEY``.

    Returns:
        ``destination``.

    Raises:
        RoboflowError: bad key, unknown workspace/project/version/format, export still generating at
            the deadline, failing export link, corrupt zip, Roboflow unreachable, ``destination`` exists.
    """
    key = api_key or api_key_from_env()
    if not _FORMAT.fullmatch(export_format):
        raise RoboflowError(f"not a Roboflow export format name: {export_format!r} (e.g. coco-segmentation)")
    destination = Path(destination)
    if destination.exists():
        raise RoboflowError(f"{destination} already exists; refusing to download over it")
    what = f"{ref} ({export_format})"
    with staged_folder(destination) as location:
        run_client(download_job, (ref, export_format, str(location)), key, timeout_s, what)
        if (location / "roboflow.zip").exists() or not any(p.is_file() for p in location.rglob("*")):
            raise RoboflowError(f"the download of {what} did not complete (no unpacked files)")
    return destination


def download_job(observer: Observer, api_key: str, ref: RoboflowRef, export_format: str, location: str) -> str:
    """Child side: opens the version and lets the client download and unpack the export into ``location``."""
    observer.names.update(version=f"version {ref.workspace}/{ref.project}/{ref.version}",
                          export=f"{ref} ({export_format})")
    project = open_project(observer, api_key, ref.workspace, ref.project)
    observer.phase = "opening the version"
    version = project.version(ref.version)
    observer.phase = "downloading the export"
    version.download(export_format, location=location, overwrite=True)
    return location
