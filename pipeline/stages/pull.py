"""Stage ``pull``: annotation export -> ``artifacts/frames`` (grey frames, masks, manifest) + ``reports/qc.json``.

``python -m pipeline.stages.pull`` reads the ``data`` and ``qc`` sections of params.yaml. The
export is the folder or zip at ``data.export_dir``, or (``data.source: roboflow``) the
pinned Roboflow version, downloaded with the key from ``ROBOFLOW_API_KEY``.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import DataParams, load_params
from pipeline.files.output_folder import refuse_overlap
from pipeline.ingest.qc import summarise
from pipeline.ingest.records import IngestError
from pipeline.ingest.source import QualityError, ingest, ingest_summary
from pipeline.layout import FRAMES_DIR, QC_REPORT
from pipeline.stages.runner import run_stage


def main() -> None:
    """Normalises the export into ``artifacts/frames`` and writes the QC report; stops on QC errors."""
    params = load_params()
    check_frames_manifest_tracked(params.data)
    if params.data.source == "local":
        refuse_overlap(FRAMES_DIR, [Path(params.data.export_dir)])
        refuse_overlap(QC_REPORT, [Path(params.data.export_dir)])
    try:
        result = ingest(params.data, params.qc, FRAMES_DIR, QC_REPORT)
    except QualityError as error:
        print(summarise(error.findings), flush=True)
        raise
    print(summarise(result.findings))
    print(ingest_summary("pull", params.data, result, FRAMES_DIR, QC_REPORT))


def check_frames_manifest_tracked(data: DataParams) -> None:
    """Raises IngestError unless ``data.frames_manifest`` lies inside ``data.export_dir``.

    The stage depends on ``export_dir`` (dvc.yaml), so a manifest inside it is tracked:
    editing it reruns the pull; one elsewhere would silently not.
    """
    if data.frames_manifest is None:
        return
    manifest, folder = Path(data.frames_manifest).resolve(), Path(data.export_dir).resolve()
    if not manifest.is_relative_to(folder):
        raise IngestError(f"{data.frames_manifest}: data.frames_manifest must be inside data.export_dir "
                          f"({data.export_dir}), which DVC tracks; copy it there")


if __name__ == "__main__":
    run_stage(main)
