"""Getting an export from where ``data`` says, normalising it, and reporting its quality.

:func:`ingest` is the one implementation behind the pull stage and ``trus ingest``:
open the export (a folder, a zip, or a pinned Roboflow version downloaded through the
API), normalise it into an atomic output folder, write the QC report, and stop (leaving
no output folder) when a finding's action is ``error``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

from pipeline.config import DataParams, QcParams, setting
from pipeline.ingest.formats import unwrap
from pipeline.ingest.names import shown_as
from pipeline.ingest.normalise import NormalisedExport, normalise_export
from pipeline.ingest.qc import Finding, blocking, write_report
from pipeline.ingest.records import IngestError
from pipeline.ingest.roboflow.common import RoboflowRef
from pipeline.ingest.roboflow.download import download_export
from pipeline.files.atomic import staged_folder


class QualityError(IngestError):
    """Annotation QC findings whose action is ``error``; the report file holds them all.

    Attributes:
        findings: every finding of the export (warnings too), for the console summary.
    """

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message)
        self.findings = findings


@contextmanager
def opened_export(source: Path) -> Iterator[Path]:
    """Yields the export folder of ``source``, a folder or a zip (extracted to a temporary folder).

    A folder wrapping the whole export (``export.zip/my-export/train/...``, what "compress
    folder" makes) is stepped into (:func:`pipeline.ingest.formats.unwrap`). Inside a zip,
    messages name the zip and the file in it (``export.zip: train/_annotations.coco.json``),
    never the temporary folder.

    Raises:
        IngestError: missing source, or a corrupt zip.
    """
    if source.is_dir():
        yield unwrap(source)
        return
    if not source.is_file():
        raise IngestError(f"{source}: no such export (folder or .zip)")
    with TemporaryDirectory(prefix="trus-export-") as folder:
        try:
            with zipfile.ZipFile(source) as archive:
                archive.extractall(folder)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise IngestError(f"{source}: not a readable zip ({error})") from error
        with shown_as(Path(folder), str(source)):
            yield unwrap(Path(folder))


def roboflow_ref(data: DataParams) -> RoboflowRef:
    """The pinned dataset version named by ``data.roboflow``."""
    return RoboflowRef(data.roboflow.workspace, data.roboflow.project, data.roboflow.version)


def describe_source(data: DataParams) -> str:
    """Where ``data`` takes its export from, for messages and ``source.json`` (never the key)."""
    return str(roboflow_ref(data)) if data.source == "roboflow" else f"local:{data.export_dir}"


@contextmanager
def exported(data: DataParams) -> Iterator[Path]:
    """Yields the unpacked export that ``data`` names; temporary copies are deleted afterwards.

    ``source: roboflow`` downloads the version through the API (key from ``ROBOFLOW_API_KEY``,
    waiting at most ``data.roboflow.timeout_s``); a failed download leaves nothing behind.

    Raises:
        IngestError: a missing source or corrupt zip; RoboflowError (a subclass) for the API.
    """
    if data.source == "local":
        with opened_export(Path(data.export_dir)) as root:
            yield root
        return
    with TemporaryDirectory(prefix="trus-roboflow-") as scratch:
        root = download_export(roboflow_ref(data), data.format, Path(scratch) / "export", data.roboflow.timeout_s)
        with shown_as(root, describe_source(data)):
            yield root


def ingest(data: DataParams, qc: QcParams, out_dir: Path, report_path: Path, progress: bool = True,
           into: Callable[[Path], AbstractContextManager[Path]] = staged_folder) -> NormalisedExport:
    """Normalises the export ``data`` names into ``out_dir`` and writes the QC report to ``report_path``.

    ``out_dir`` is written through ``into(out_dir)``, which yields an empty folder that becomes
    ``out_dir`` only when everything succeeded and no finding is an ``error``: the stage's
    :func:`staged_folder`, or ``trus ingest``'s rules for a folder the user named
    (:func:`pipeline.files.output_folder.output_folder`, checked before anything is downloaded).
    The report is written in any case once the export has been read.

    Raises:
        QualityError: findings whose action is ``error`` (counted, the first named).
        IngestError, FrameReadError: the export cannot be read (see :func:`normalise_export`).
        OutputFolderError: ``into`` refuses ``out_dir``.
    """
    with into(out_dir) as partial, exported(data) as root:
        result = normalise_export(root, partial, data, qc, describe_source(data), progress)
        write_report(result.findings, report_path)
        errors = blocking(result.findings)
        if errors:
            first = errors[0]
            raise QualityError(f"{len(errors)} annotation finding(s) stop the pipeline, e.g. {first.kind} in "
                               f"{first.frame or 'the export'}: {first.detail}; see {report_path} "
                               f"(set {setting(f'qc.{first.kind}', 'warn')} to go on)", result.findings)
    return result


def ingest_summary(command: str, data: DataParams, result: NormalisedExport, out_dir: Path, report_path: Path) -> str:
    """The console line after an ingest: frames, patients, where from, format, where to."""
    manifest = result.manifest
    return (f"{command}: {len(manifest)} frames of {manifest['patient'].nunique()} patients from "
            f"{describe_source(data)} ({result.export_format}) -> {out_dir}; QC report {report_path}")


__all__ = ["QualityError", "describe_source", "ingest_summary", "exported", "ingest", "opened_export", "roboflow_ref"]
