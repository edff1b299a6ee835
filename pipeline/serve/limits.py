"""The service's limits: the size of a request's body, and the number of requests waiting for the model.

- :class:`BodySizeLimit`, an ASGI middleware: a request whose ``Content-Length`` is above the
  limit is answered 413 without passing its body to the application; one sent without a
  length (chunked) is counted as it arrives and answered 413 as soon as it passes the limit
  (the application then sees the client disconnect, and whatever it answers is dropped).
  Before the 413 the rest of the body is read and thrown away (up to :data:`DRAIN_FACTOR`
  times the limit, for at most :data:`DRAIN_SECONDS`): a server that closes its socket with
  the client's data still unread makes the kernel reset the connection, and the client, still
  sending, then loses the 413 and sees "connection reset" instead (the "lingering close" of
  Apache and nginx). A body larger than that is cut off without reading it.
- :class:`InferenceQueue`: at most ``limit`` requests are admitted at once (their files read
  into memory, running or waiting for a worker); one more is refused at once (:class:`QueueFull`: the app answers
  503 with ``Retry-After``). Work runs on a pool of ``workers`` threads, so the event loop
  never blocks; the network itself runs one frame at a time (:attr:`InferenceQueue.network_lock`)
  on all the cores, while the other workers decode, prepare and encode the next frames.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")

MB = 1024 * 1024
DRAIN_FACTOR = 4
"""A refused body is read to its end before the 413 when it is at most this many times the limit."""
DRAIN_SECONDS = 10.0
"""The longest a refused body is read before the 413 is sent anyway, seconds."""


@dataclass(frozen=True)
class ServeLimits:
    """Limits of ``trus serve`` (its options).

    Attributes:
        max_upload_mb: largest request body, MiB (all its files together), > 0.
        max_files: most files in one request, >= 1.
        queue: most requests admitted at once (running or waiting), >= 1; more get 503.
        workers: threads that decode, run and encode, >= 1.
        retry_after_s: the ``Retry-After`` of a 503, seconds, >= 1.
    """

    max_upload_mb: float = 64.0
    max_files: int = 32
    queue: int = 16
    workers: int = 2
    retry_after_s: int = 2

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise ValueError(f"--max-upload-mb must be > 0, got {self.max_upload_mb}")
        for name, value in (("--max-files", self.max_files), ("--queue", self.queue), ("--workers", self.workers),
                            ("--retry-after", self.retry_after_s)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")

    @property
    def max_upload_bytes(self) -> int:
        """:attr:`max_upload_mb` in bytes."""
        return int(self.max_upload_mb * MB)


async def send_json(send: Send, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    """Sends a whole JSON response through a raw ASGI ``send``."""
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
           *((key.lower().encode(), value.encode()) for key, value in (headers or {}).items())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def drain_body(receive: Receive, max_bytes: int, max_seconds: float) -> int:
    """Reads and discards the rest of a request's body: until its end, ``max_bytes`` or ``max_seconds``.

    Args:
        receive: the ASGI ``receive`` of the request.
        max_bytes: stop after reading more than this many bytes.
        max_seconds: stop after this long (a client that sends slowly cannot hold the answer back).

    Returns:
        The bytes read and thrown away.
    """
    drained = 0
    try:
        async with asyncio.timeout(max_seconds):
            while drained <= max_bytes:
                message = await receive()
                if message["type"] != "http.request":
                    break  # the client went away
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        pass
    return drained


class BodySizeLimit:
    """ASGI middleware: 413 for a request body above ``max_bytes`` (see the module's docstring)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self) -> dict[str, str]:
        return {"detail": f"the request is larger than the service's limit of {self.max_bytes / MB:g} MiB "
                          f"(trus serve --max-upload-mb)"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            if int(length) <= DRAIN_FACTOR * self.max_bytes:
                await drain_body(receive, DRAIN_FACTOR * self.max_bytes, DRAIN_SECONDS)
            await send_json(send, 413, self._too_large(), {"Connection": "close"})
            return
        received = 0
        refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # answer now; the application sees the client go away
                    refused = True
                    if message.get("more_body", False):
                        await drain_body(receive, DRAIN_FACTOR * self.max_bytes - received, DRAIN_SECONDS)
                    await send_json(send, 413, self._too_large(), {"Connection": "close"})
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after a 413 the application's own answer is dropped
                await send(message)

        await self.app(scope, counted_receive, guarded_send)


class QueueFull(Exception):
    """The service already has as many requests as its queue admits."""


class InferenceQueue:
    """A bounded admission of requests onto a thread pool (see the module's docstring)."""

    def __init__(self, limit: int, workers: int) -> None:
        self.limit = limit
        self.admitted = 0
        self.network_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="trus-serve")

    @asynccontextmanager
    async def admission(self) -> AsyncIterator[None]:
        """Holds one of the ``limit`` places for the block: a request's upload is read into memory and run inside it,
        so at most ``limit`` requests' files are in memory at once.

        Raises:
            QueueFull: ``limit`` requests are already admitted; the block does not run.
        """
        if self.admitted >= self.limit:
            raise QueueFull
        self.admitted += 1  # the event loop's thread only: no lock needed
        try:
            yield
        finally:
            self.admitted -= 1

    async def run(self, function: Callable[[], T]) -> T:
        """Runs ``function`` on the pool and waits for it without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, function)

    def close(self) -> None:
        """Waits for the running work and stops the threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)
