"""The service for tests: a real uvicorn on 127.0.0.1 (a free port) in a thread, stopped on leaving."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from pipeline.serve.service import ServeConfig, create_app


@dataclass(frozen=True)
class RunningService:
    """A started service: its base URL (``http://127.0.0.1:<port>``) and its application."""

    url: str
    app: FastAPI


@contextmanager
def running_service(config: ServeConfig, start_timeout_s: float = 30.0) -> Iterator[RunningService]:
    """Runs :func:`create_app` of ``config`` under uvicorn on a socket bound to 127.0.0.1:0 until the block ends."""
    app = create_app(config)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    try:
        yield RunningService(f"http://127.0.0.1:{listener.getsockname()[1]}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()
