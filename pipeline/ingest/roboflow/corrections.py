"""Sending a corrections folder (:mod:`pipeline.corrections`) to the Roboflow project, frame by frame.

Same guards as :mod:`pipeline.ingest.roboflow.client`: the real client runs in a child
interpreter that is killed when it stalls, its output is discarded, and every message has the
key replaced by ``***``. For each corrected frame the child

1. finds the image in the project by name (the client's project search, ``Project.search``,
   paged through once into a name -> image id index; Roboflow's project image names are
   the original upload names, so an export name ``P007_F03_png.rf.<hash>.jpg`` is looked up
   as ``P007_F03.png`` when the name itself is not there);
2. tags it (``Project.update_image_metadata(image_id, add_tags=[tag])``), first, so that an
   image whose annotation changes always carries the tag the team filters on;
3. saves the frame's single-image COCO file over the old annotation
   (``Project.save_annotation(..., image_id=..., annotation_overwrite=True,
   add_to_dataset=False)``): ``add_to_dataset=False`` never moves an image into the
   Dataset (an image still in a batch or an annotation job stays there until reviewed).

Each frame's outcome reaches this process as it happens (``["progress", n, outcome]``), so a
failure, a killed child or the deadline still leaves a complete report of what was sent. A
problem of one frame (no such image, two images of that name, a refused tag or annotation)
is reported and the next frame goes on; a refused key, a network failure or the deadline stops
the upload, and every frame not attempted is reported with that reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.corrections.coco import frame_document_path, read_corrections
from pipeline.ingest.names import parse_export_name
from pipeline.ingest.roboflow.child import ClientFailure, Observer, caused_by, open_project, send
from pipeline.ingest.roboflow.client import run_client
from pipeline.ingest.roboflow.common import (
    API_KEY_VARIABLE,
    SLUG,
    RoboflowError,
    api_key_from_env,
    scrub,
)

DEFAULT_TAG = "clinician-corrected"
SEARCH_PAGE = 250  # the search API's largest page
ANNOTATION_NAME = "annotation.coco.json"  # the name the client's own COCO import sends (util/folderparser.py)
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:-]{0,63}")


@dataclass(frozen=True)
class FrameOutcome:
    """What happened to one corrected frame.

    Attributes:
        file_name: the frame's file name in the corrections folder.
        sent: True when the image was tagged and its annotation saved.
        reason: why not (or what was done before the failure); empty when sent.
        image_id: the Roboflow image id, when the image was found.
    """

    file_name: str
    sent: bool
    reason: str = ""
    image_id: str = ""


@dataclass(frozen=True)
class CorrectionsUpload:
    """The report of one ``trus upload-corrections`` run.

    Attributes:
        folder: the corrections folder.
        workspace, project: the Roboflow project.
        tag: the tag each sent image got.
        outcomes: one per frame of the folder, in its order.
        stopped: the failure that stopped the upload (key, network, deadline), or empty.
    """

    folder: str
    workspace: str
    project: str
    tag: str
    outcomes: tuple[FrameOutcome, ...]
    stopped: str = ""

    @property
    def failed(self) -> tuple[FrameOutcome, ...]:
        """The frames not sent."""
        return tuple(outcome for outcome in self.outcomes if not outcome.sent)

    def as_json(self) -> dict:
        """The report as JSON: the run, then ``sent`` and ``not_sent`` frames."""
        return {"folder": self.folder, "workspace": self.workspace, "project": self.project, "tag": self.tag,
                "stopped": self.stopped or None, "frames": len(self.outcomes),
                "sent": [{"file_name": o.file_name, "image_id": o.image_id} for o in self.outcomes if o.sent],
                "not_sent": [{"file_name": o.file_name, "image_id": o.image_id or None, "reason": o.reason}
                             for o in self.failed]}


def lookup_names(file_name: str) -> list[str]:
    """The names to look a frame up by in the project: its own, then the original name an export name encodes."""
    original = parse_export_name(file_name).original_name
    return [file_name] if original == file_name else [file_name, original]


def upload_corrections(folder: Path, workspace: str, project: str, tag: str = DEFAULT_TAG, timeout_s: float = 120.0,
                       api_key: str | None = None) -> CorrectionsUpload:
    """Sends every frame of a corrections folder to a Roboflow project; never raises once sending began.

    Args:
        folder: a folder written by :func:`pipeline.corrections.write_corrections`.
        workspace, project: the project's slugs.
        tag: added to every corrected image.
        timeout_s: the longest wait for Roboflow: for the key/workspace/project checks and the
            image listing, then for each frame (the clock restarts after every frame).
        api_key: the key; None reads ``ROBOFLOW_API_KEY``.

    Returns:
        The report: each frame sent or not (with the reason), and what stopped the upload.

    Raises:
        RoboflowError: no key, bad slugs or tag (nothing sent).
        CorrectionsError: a malformed corrections folder (nothing sent).
    """
    key = api_key or api_key_from_env()
    if not (SLUG.fullmatch(workspace) and SLUG.fullmatch(project)):
        raise RoboflowError(f"not a Roboflow workspace/project: {workspace!r}/{project!r} (URL slugs)")
    if not TAG.fullmatch(tag):
        raise RoboflowError(f"not a usable Roboflow tag: {tag!r} (letters, digits, space, _ . : -; at most 64)")
    folder = Path(folder)
    frames = read_corrections(folder)
    jobs = [(frame.file_name, lookup_names(frame.file_name),
             frame_document_path(folder, frame.file_name).read_text(encoding="utf-8")) for frame in frames]
    outcomes: dict[str, FrameOutcome] = {}

    def record(payload: list) -> None:
        if len(payload) > 1 and isinstance(payload[1], dict):
            outcome = FrameOutcome(**payload[1])
            outcomes[outcome.file_name] = FrameOutcome(outcome.file_name, outcome.sent, scrub(outcome.reason, key),
                                                       outcome.image_id)

    stopped = ""
    try:
        run_client(_corrections_job, (workspace, project, tag, jobs), key, timeout_s,
                   f"the corrections in {folder} for {workspace}/{project}", progress_extends_deadline=True,
                   on_progress=record)
    except RoboflowError as error:
        stopped = scrub(str(error), key)
    report = []
    for file_name, _, _ in jobs:
        outcome = outcomes.get(file_name)
        if outcome is None:
            reason = f"not sent: {stopped}" if stopped else "not sent: the client stopped before this frame"
            outcome = FrameOutcome(file_name, False, reason)
        report.append(outcome)
    return CorrectionsUpload(str(folder), workspace, project, tag, tuple(report), stopped)


# Child side.

def _corrections_job(observer: Observer, api_key: str, workspace: str, project: str, tag: str,
                     jobs: list[tuple[str, list[str], str]]) -> int:
    """Child side: opens the project, indexes its images by name, then tags and annotates one frame at a time."""
    target = open_project(observer, api_key, workspace, project)
    observer.phase = "listing the project's images"
    index = _image_index(observer, target)
    sent = 0
    for position, (file_name, names, document) in enumerate(jobs):
        outcome, fatal = _send_frame(observer, target, index, f"{workspace}/{project}", tag, file_name, names,
                                     document)
        outcome = FrameOutcome(outcome.file_name, outcome.sent, scrub(outcome.reason, api_key), outcome.image_id)
        sent += outcome.sent
        send(observer.channel, ["progress", position + 1, asdict(outcome)])
        if fatal:
            raise ClientFailure(fatal)
    return sent


def _image_index(observer: Observer, target: Any) -> dict[str, list[str]]:
    """Child side: every image of the project, name -> ids, through the project search, page by page."""
    index: dict[str, list[str]] = {}
    offset = 0
    while True:
        # batch=None leaves the search's batch filter off (the client's default, False, sends one)
        page = target.search(offset=offset, limit=SEARCH_PAGE, batch=None, fields=["id", "name"])
        for hit in page:
            index.setdefault(str(hit.get("name", "")), []).append(str(hit["id"]))
        send(observer.channel, ["progress", 0])  # the listing of a large project restarts the clock per page
        if len(page) < SEARCH_PAGE:
            return index
        offset += SEARCH_PAGE


def _send_frame(observer: Observer, target: Any, index: dict[str, list[str]], where: str, tag: str, file_name: str,
                names: list[str], document: str) -> tuple[FrameOutcome, str]:
    """Child side: one frame. Returns its outcome and, when the upload must stop, why (else "")."""
    found = next(((name, index[name]) for name in names if index.get(name)), None)
    if found is None:
        return FrameOutcome(file_name, False, f"the project {where} has no image named "
                                              f"{' or '.join(dict.fromkeys(names))}"), ""
    name, ids = found
    if len(ids) > 1:
        return FrameOutcome(file_name, False, f"the project {where} has {len(ids)} images named {name} "
                                              f"({', '.join(ids[:3])}); correct it in Roboflow by hand"), ""
    image_id = ids[0]
    observer.phase = f"tagging {file_name}"
    try:
        target.update_image_metadata(image_id, add_tags=[tag])
    except Exception as error:  # noqa: BLE001 - mapped to the frame's reason
        reason, fatal = _failure(error, observer, f"the tag of {file_name}", observer.status)
        return FrameOutcome(file_name, False, f"not tagged, annotation not saved: {reason}", image_id), \
            reason if fatal else ""
    observer.phase = f"saving the annotation of {file_name}"
    if name != file_name:  # the project knows the image by its original name: the file must name it so
        payload = json.loads(document)
        payload["images"][0]["file_name"] = name
        document = json.dumps(payload)
    try:
        answer, _, _ = target.save_annotation({"name": ANNOTATION_NAME, "rawText": document}, image_id=image_id,
                                              annotation_overwrite=True, add_to_dataset=False)
    except Exception as error:  # noqa: BLE001
        reason, fatal = _failure(error, observer, f"the annotation of {file_name}", getattr(error, "status_code", None))
        return FrameOutcome(file_name, False, f"tagged {tag!r}, annotation not saved: {reason}", image_id), \
            reason if fatal else ""
    if isinstance(answer, dict) and answer.get("warn"):
        return FrameOutcome(file_name, False, f"tagged {tag!r}, but Roboflow kept the old annotation "
                                              f"({answer['warn']})", image_id), ""
    return FrameOutcome(file_name, True, "", image_id), ""


def _failure(error: BaseException, observer: Observer, what: str, status: int | None) -> tuple[str, bool]:
    """Child side: one line for a failed call, and whether it stops the upload (key, network)."""
    import requests
    if caused_by(error, requests.RequestException):
        return f"cannot reach Roboflow at {observer.api_url} ({_root_name(error)}); check the network/API_URL", True
    if status in (401, 403):
        return f"Roboflow rejected the API key (HTTP {status}) for {what}; check {API_KEY_VARIABLE}", True
    message = str(getattr(error, "message", None) or error)
    try:  # the search and metadata calls raise the response text: Roboflow's JSON error body
        body = json.loads(message)
        inner = body.get("error", body) if isinstance(body, dict) else body
        message = str(inner.get("message", inner) if isinstance(inner, dict) else inner)
    except ValueError:
        pass
    message = " ".join(message.split())[:200]
    return f"Roboflow refused {what} (HTTP {status if status is not None else '?'}): {message}", False


def _root_name(error: BaseException) -> str:
    """The name of the innermost requests exception in the chain (``ConnectionError``)."""
    name = type(error).__name__
    for _ in range(10):
        error = error.__cause__ or error.__context__
        if error is None:
            return name
        if type(error).__module__.startswith("requests"):
            name = type(error).__name__
    return name
