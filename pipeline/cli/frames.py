"""``trus frames``: de-identified frames for labelling, and a manifest (pseudonymous patient, study, spacing)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Force, fail, one_line_errors, say

PSEUDONYM_KEY_VARIABLE = "TRUS_PSEUDONYM_KEY"


def frames(
    raw_dir: Annotated[Path, typer.Argument(help="Scanner output: one folder per patient (DICOM, PNG, JPEG, BMP, TIFF).")],
    out: Annotated[Path, typer.Option(help="New folder for images/*.png and manifest.csv (outside RAW_DIR).")],
    channel: Annotated[int | None, typer.Option(min=0, help="TIFF channel to read (e.g. FLAIR) instead of grey.")] = None,
    blank: Annotated[bool, typer.Option(help="Zero DICOM pixels outside the ultrasound regions.")] = True,
    force: Force = False,
) -> None:
    """De-identified frames for labelling, and a manifest (pseudonymous patient, study, spacing).

    Pseudonyms are keyed by the secret in TRUS_PSEUDONYM_KEY (at least 16 bytes); keep it
    to give the same patient the same key next time. No name, id, date or path is written.
    """
    with one_line_errors():
        from pipeline.ingest.raw_scans import MIN_SECRET_BYTES, extract_frames

    secret = os.environ.get(PSEUDONYM_KEY_VARIABLE, "").encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise fail(f"{PSEUDONYM_KEY_VARIABLE} must hold a secret of at least {MIN_SECRET_BYTES} bytes "
                   f"(e.g. export {PSEUDONYM_KEY_VARIABLE}=$(openssl rand -hex 32)); keep it safe and reuse it")
    with one_line_errors():
        report = extract_frames(raw_dir, out, secret, channel, blank_outside_region=blank, force=force)
    for message in report.errors:
        say(message, "skipped")
    manifest = report.manifest
    say(f"frames: {len(manifest)} frame(s) of {manifest['patient'].nunique()} patient(s) -> {out} "
        f"({len(report.errors)} unreadable, {report.ignored} not images, {report.duplicates} duplicates)")
    if report.unblanked_frames:
        say(f"{report.unblanked_frames} frame(s) keep all their pixels (no DICOM ultrasound region): check them "
            "for burned-in names or dates before uploading", "warning")
    if report.mixed_folders:
        say(f"{report.mixed_folders} patient folder(s) gave more than one patient key (DICOM PatientID differs "
            "within the folder)", "warning")
