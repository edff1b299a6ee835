"""The child-interpreter side of :mod:`pipeline.ingest.roboflow.client`: driving the real client.

Runs only in the child that :func:`pipeline.ingest.roboflow.client.run_client` starts: it
silences the client's output, watches (without changing) its HTTP calls, runs one job, and
answers the parent with JSON lines (``http``, ``progress``, then ``done`` or ``error``).
Every message has the API key replaced by ``***`` (:func:`scrub`).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import threading
import zipfile
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import urlsplit

from pipeline.ingest.roboflow.common import API_KEY_VARIABLE, scrub

_STEPS = ("key", "workspace", "project", "version", "export")  # by the number of path parts after API_URL


class ClientFailure(Exception):
    """Raised by a job with a message already fit to show (scrubbed again by the parent)."""


class Observer:
    """Child side: reports the client's ``http.get``/``http.post`` calls without changing them.

    Attributes:
        phase: what the job is doing, for messages.
        names: how messages name each step's target (``workspace``, ``project``, ``version``, ``export``).
        step, status: the last HTTP step attempted (key/workspace/project/version/export/link) and its status.
    """

    def __init__(self, channel: TextIO) -> None:
        from roboflow.config import API_URL  # this child's own import: its environment's API_URL
        from roboflow.util import http  # every module of the client calls http.get/http.post through it
        self.channel, self.api_url, self.phase, self.names = channel, API_URL, "checking the API key", {}
        self.step, self.status = "key", None
        for name in ("get", "post"):
            setattr(http, name, self._observed(getattr(http, name)))

    def _observed(self, request: Callable[..., Any]) -> Callable[..., Any]:
        def observed(url: str, **kwargs: Any) -> Any:
            self.step, self.status = self._step_of(url, bool(kwargs.get("stream"))), None
            response = request(url, **kwargs)
            self.status = response.status_code
            send(self.channel, ["http", self.step, self.status, self._generating(response)])
            return response
        return observed

    def _step_of(self, url: str, stream: bool) -> str:
        base, path = urlsplit(self.api_url).path.rstrip("/"), urlsplit(url).path
        if stream or not path.startswith(base):
            return "link" if stream else "other"  # the zip is the only streamed request
        parts = [part for part in path[len(base):].split("/") if part]
        return _STEPS[len(parts)] if len(parts) < len(_STEPS) else "other"

    def _generating(self, response: Any) -> bool:
        if self.step == "export":
            return response.status_code == 202
        try:
            version = response.json().get("version", {}) if self.step == "version" else {}
            return bool(version) and bool(version.get("generating") or version.get("images", 0) == 0)
        except ValueError:
            return False


def child_main() -> None:
    """Child entry: silences all output, runs the pickled job, answers ``done`` or a mapped, scrubbed ``error``."""
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stderr is /dev/null already
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the child
    job, api_key, args = pickle.load(sys.stdin.buffer)
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(3)), daemon=True).start()
    observer = None
    try:
        observer = Observer(channel)
        answer: list = ["done", job(observer, api_key, *args)]
    except BaseException as error:  # noqa: BLE001 - everything becomes one scrubbed line
        answer = ["error", scrub(describe_failure(error, observer), api_key)]
    send(channel, answer)
    channel.close()


def send(channel: TextIO, message: list) -> None:
    """Child side: one JSON line to the parent."""
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def describe_failure(error: BaseException, observer: Observer | None) -> str:
    """One line for a client failure, from the exception and the last HTTP step and status."""
    import requests
    if isinstance(error, ClientFailure) or observer is None:
        return _one_line(error)
    step, status, names = observer.step, observer.status, observer.names
    export = names.get("export", "the export")
    if step == "link" and status is not None and status >= 400:
        return f"the export link of {export} answered HTTP {status} (expired or unavailable); run again for a fresh link"
    if step == "link" and caused_by(error, requests.RequestException):
        return f"the download of {export} from its storage link failed ({type(error).__name__}); run again"
    if caused_by(error, requests.ConnectionError):
        return f"cannot reach Roboflow at {observer.api_url} (connection refused or offline); check the network/API_URL"
    if caused_by(error, zipfile.BadZipFile) or "Error unzipping download" in str(error):
        return f"the export zip of {export} is corrupt ({_one_line(error)}); run again"
    if status in (401, 403):
        if step == "key":
            return f"Roboflow rejected the API key (HTTP {status}); check {API_KEY_VARIABLE}"
        return f"Roboflow refused access to {names.get(step, step)} (HTTP {status}); check {API_KEY_VARIABLE}"
    if status == 404 and step in ("workspace", "project", "version"):
        return f"Roboflow {names.get(step, step)} not found (HTTP 404)"
    if observer.phase == "opening the version" and "is not found" in str(error):
        return f"Roboflow {names.get('version', 'version')} not found"
    if step == "export" and status == 202:  # listed as exported, yet still being prepared
        return f"Roboflow export of {export} is not ready yet (HTTP 202); run again shortly"
    if step == "export" and status is not None and status >= 400:
        return f"Roboflow cannot export {export} (HTTP {status}): {_server_message(error)}"
    return f"Roboflow client failed while {observer.phase}: {type(error).__name__}: {_one_line(error)}"


def _server_message(error: BaseException) -> str:
    """The ``error.message`` of a Roboflow JSON error body, else the text itself, as one line."""
    try:
        body = json.loads(str(error))
        inner = body.get("error", body) if isinstance(body, dict) else body
        return _one_line(inner.get("message", inner) if isinstance(inner, dict) else inner)
    except (ValueError, AttributeError):
        return _one_line(error)


def _one_line(value: object, limit: int = 300) -> str:
    return " ".join(str(value).split())[:limit]


def caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether ``error`` is, or was raised from (``__cause__``/``__context__``, 10 links at most), a ``kind``."""
    for _ in range(10):
        if error is None or isinstance(error, kind):
            return error is not None
        error = error.__cause__ or error.__context__
    return False


def open_project(observer: Observer, api_key: str, workspace: str, project: str) -> Any:
    """Child side: the client's Project object, after the key check and the workspace."""
    from roboflow import Roboflow
    observer.names.update(workspace=f"workspace '{workspace}'", project=f"project '{workspace}/{project}'")
    client = Roboflow(api_key=api_key)
    observer.phase = "opening the workspace"
    opened = client.workspace(workspace)
    observer.phase = "opening the project"
    return opened.project(project)
