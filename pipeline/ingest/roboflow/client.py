"""Running the real ``roboflow`` client safely: in a child interpreter, with a deadline, the key scrubbed.

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
is :mod:`pipeline.ingest.roboflow.child`; the jobs it runs are in ``download.py`` and ``upload.py``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.ingest.roboflow.common import RoboflowError, scrub

CHILD_MODULE = "pipeline.ingest.roboflow.child"  # run by name in the child: this module never imports it


def run_client(job: Callable[..., Any], args: tuple, api_key: str, timeout_s: float, what: str,
               progress_extends_deadline: bool = False, on_progress: Callable[[list], None] | None = None) -> Any:
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
        on_progress: called in this process with the payload of each ``["progress", n, ...]``
            the job sends (``[n, ...]``, not scrubbed), as it arrives: what the job did before a
            failure or the deadline is known even though no answer comes.

    Returns:
        What ``job`` returned (JSON-serialisable).

    Raises:
        RoboflowError: the job's mapped failure, the deadline, or a child that died.
        ModuleNotFoundError: the ``roboflow`` package is not installed (the ``ingest`` extra).
    """
    if importlib.util.find_spec("roboflow") is None:  # checked here: the child's ImportError would be opaque
        raise ModuleNotFoundError("No module named 'roboflow'", name="roboflow")
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    child = subprocess.Popen([sys.executable, "-c", f"from {CHILD_MODULE} import child_main; child_main()"], env=env,
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
                if on_progress is not None:
                    on_progress(payload)
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
