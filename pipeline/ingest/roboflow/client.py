"""A pinned Roboflow dataset version, downloaded through the real ``roboflow`` client, safely.

The client (1.7.x) polls forever while an export or a version is generating, sets no timeouts,
puts the API key into every URL (so into its exception texts), prints progress, ignores the HTTP
status of the export link, and reads ``API_URL`` from the environment once, when imported.
So every client call runs in a child interpreter (``python -c``, see :func:`run_client`) that
imports ``roboflow`` itself with the environment of the moment (tests set ``API_URL`` to the fake
server before calling; whether this process imported roboflow does not matter), is killed at the
deadline, writes nothing anywhere (stdout/stderr are /dev/null), and watches, without changing,
the client's HTTP calls so that a failure becomes one line naming the step and status that failed.
Every message has the key replaced by ``***``. The key comes from the caller or
``ROBOFLOW_API_KEY`` only and reaches the child through a pipe, never a file. The child side
is :mod:`pipeline.ingest.roboflow.child`.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.ingest.roboflow import child as roboflow_child
from pipeline.ingest.records import IngestError
from pipeline.ingest.roboflow.child import API_KEY_VARIABLE, scrub

SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FORMAT = re.compile(r"[a-z0-9][a-z0-9-]*")
_SOURCE = re.compile(r"roboflow:([^/\s]+)/([^/\s]+)/(\d+)")


class RoboflowError(IngestError):
    """Roboflow refused, failed or timed out; the one-line message never holds the API key."""


@dataclass(frozen=True)
class RoboflowRef:
    """A pinned dataset version, ``roboflow:WORKSPACE/PROJECT/VERSION`` (immutable on Roboflow's side)."""

    workspace: str
    project: str
    version: int

    def __post_init__(self) -> None:
        if not (SLUG.fullmatch(self.workspace) and SLUG.fullmatch(self.project)) \
                or type(self.version) is not int or self.version < 1:
            raise RoboflowError(f"not a Roboflow dataset version: {self.workspace!r}/{self.project!r}/"
                                f"{self.version!r} (workspace and project are URL slugs, version >= 1)")

    def __str__(self) -> str:
        return f"roboflow:{self.workspace}/{self.project}/{self.version}"


def parse_roboflow_source(text: str) -> RoboflowRef:
    """Parses ``roboflow:WORKSPACE/PROJECT/VERSION``, e.g. ``roboflow:hospital-urology/prostate-trus/3``.

    Raises:
        RoboflowError: (a ValueError) anything else.
    """
    match = _SOURCE.fullmatch(text.strip())
    if not match:
        raise RoboflowError(f"not a Roboflow source: {text!r}; expected roboflow:WORKSPACE/PROJECT/VERSION "
                            "(e.g. roboflow:hospital-urology/prostate-trus/3)")
    return RoboflowRef(match[1], match[2], int(match[3]))


def api_key_from_env() -> str:
    """The API key, from ``ROBOFLOW_API_KEY`` only (never from a file of the project).

    Raises:
        RoboflowError: the variable is unset or empty.
    """
    key = os.environ.get(API_KEY_VARIABLE, "").strip()
    if not key:
        raise RoboflowError(f"{API_KEY_VARIABLE} is not set: export {API_KEY_VARIABLE}=<your Roboflow API key> "
                            "(Roboflow > Settings > API Keys); it is never read from a file")
    return key


def download_export(ref: RoboflowRef, export_format: str, destination: Path, timeout_s: float,
                    api_key: str | None = None) -> Path:
    """Downloads and unpacks a dataset version's export into ``destination``, all or nothing.

    The client works in a temporary sibling folder; only a download that finished and whose zip
    extracted cleanly is renamed to ``destination``. Any failure leaves no folder behind.

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
    destination.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{destination.name}.partial-", dir=destination.parent))
    try:
        location, what = scratch / "export", f"{ref} ({export_format})"
        run_client(roboflow_child.download_job, (ref, export_format, str(location)), key, timeout_s, what)
        if (location / "roboflow.zip").exists() or not any(p.is_file() for p in location.rglob("*")):
            raise RoboflowError(f"the download of {what} did not complete (no unpacked files)")
        location.rename(destination)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return destination


def run_client(job: Callable[..., Any], args: tuple, api_key: str, timeout_s: float, what: str,
               progress_extends_deadline: bool = False) -> Any:
    """Runs ``job(observer, api_key, *args)`` in a child interpreter and kills it at the deadline.

    Not multiprocessing: ``python -c`` re-runs nothing of the caller's ``__main__`` and starts
    clean. The child inherits ``os.environ`` (so ``API_URL``), reads the pickled request from
    stdin, answers JSON lines on stdout, and exits as soon as its stdin closes, so it never
    outlives this process, even one that is killed.

    Args:
        job: a module-level function (pickled by name) that drives the client.
        args: its further arguments (picklable).
        api_key: the key, scrubbed from every message.
        timeout_s: seconds until the child is killed; with ``progress_extends_deadline`` the
            clock restarts at each ``["progress", n]`` the job sends.
        what: what is being fetched, for messages.

    Returns:
        What ``job`` returned (JSON-serialisable).

    Raises:
        RoboflowError: the job's mapped failure, the deadline, or a child that died.
    """
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    child = subprocess.Popen([sys.executable, "-c", f"from {roboflow_child.__name__} import child_main; child_main()"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines: queue.Queue[bytes] = queue.Queue()

    def read_lines() -> None:
        for line in child.stdout:
            lines.put(line)
        lines.put(b"")

    reader = threading.Thread(target=read_lines, daemon=True, name="roboflow-client-reader")
    reader.start()
    deadline, last_http, done = time.monotonic() + timeout_s, None, 0
    try:
        with contextlib.suppress(BrokenPipeError):  # a child that died early is reported below
            child.stdin.write(pickle.dumps((job, api_key, args)))
            child.stdin.flush()
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RoboflowError(scrub(_timeout_message(last_http, timeout_s, what, done), api_key)) from None
            if not line:
                raise RoboflowError(f"the Roboflow client process for {what} ended without an answer "
                                    f"(exit code {child.wait(5)})")
            kind, *payload = json.loads(line)
            if kind == "done":
                return payload[0]
            if kind == "error":
                raise RoboflowError(scrub(str(payload[0]), api_key))
            if kind == "http":
                last_http = payload
            elif kind == "progress":
                done = payload[0]
                deadline = time.monotonic() + timeout_s if progress_extends_deadline else deadline
    finally:
        with contextlib.suppress(OSError):
            child.stdin.close()  # the child's watchdog sees end-of-file and exits at once
        try:
            child.wait(2)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        reader.join(2)
        child.stdout.close()


def _timeout_message(last_http: list | None, timeout_s: float, what: str, done: int) -> str:
    step, status, generating = last_http or ("key", None, False)
    hint = "try again later or raise the timeout (data.roboflow.timeout_s)"
    if generating:
        state = "export" if step == "export" else "version (0 images)"
        return f"Roboflow {state} of {what} still generating after {timeout_s:g} s; {hint}"
    after = f" after {done} item(s)" if done else ""
    return f"no complete answer from Roboflow for {what} within {timeout_s:g} s{after} (last step: {step}, " \
           f"HTTP {status}); {hint}"
