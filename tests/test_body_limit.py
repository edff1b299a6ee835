"""The service's body-size limit reads a refused body to its end before it answers 413 (no connection reset).

Driven as plain ASGI: a fake ``receive`` hands out the body in chunks and records what was
read, a fake ``send`` records the answer, so the order of the two is checked exactly.
tests/test_serve.py sends real oversized requests to the running service.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pipeline.serve.limits import DRAIN_FACTOR, BodySizeLimit, drain_body

LIMIT = 100


class Client:
    """A request's body in chunks, and a log of what the server read and sent, in order."""

    def __init__(self, chunks: list[int], never_ends: bool = False) -> None:
        self.chunks, self.never_ends, self.log = list(chunks), never_ends, []
        self.read = 0

    async def receive(self) -> dict[str, Any]:
        if not self.chunks:
            if self.never_ends:
                await asyncio.Event().wait()  # a client that stops sending
            return {"type": "http.disconnect"}
        size = self.chunks.pop(0)
        self.read += size
        self.log.append(("read", size))
        return {"type": "http.request", "body": bytes(size), "more_body": bool(self.chunks) or self.never_ends}

    async def send(self, message: dict[str, Any]) -> None:
        self.log.append(("send", message["type"], message.get("status")))
        if message["type"] == "http.response.body":
            self.body = json.loads(message["body"])


def call(client: Client, content_length: int | None) -> list[str]:
    """Runs the middleware around an app that reads the whole body and answers 200; returns what the app saw."""
    seen: list[str] = []

    async def app(scope, receive, send) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    asyncio.run(BodySizeLimit(app, LIMIT)({"type": "http", "headers": headers}, client.receive, client.send))
    return seen


@pytest.mark.parametrize("chunks, content_length, read, app_saw", [
    # a Content-Length over the limit: the body is read to its end first, the app never runs
    ([60, 60, 60], 180, 180, []),
    ([LIMIT * DRAIN_FACTOR], LIMIT * DRAIN_FACTOR, LIMIT * DRAIN_FACTOR, []),
    # far over (more than DRAIN_FACTOR times the limit): cut off unread
    ([LIMIT * DRAIN_FACTOR + 1], LIMIT * DRAIN_FACTOR + 1, 0, []),
    # chunked, no length: counted as it comes; past the limit the rest is read, then the 413
    ([60, 60, 60, 60], None, 240, ["http.request", "http.disconnect"]),
    # chunked and far over: read up to DRAIN_FACTOR times the limit, then the 413
    ([60] * 20, None, 60 * 7, ["http.request", "http.disconnect"]),
])
def test_a_refused_body_is_read_before_the_413(chunks: list[int], content_length: int | None, read: int,
                                               app_saw: list[str]):
    client = Client(chunks)
    assert call(client, content_length) == app_saw
    assert client.read == read
    sends = [entry for entry in client.log if entry[0] == "send"]
    assert sends == [("send", "http.response.start", 413), ("send", "http.response.body", None)]
    assert client.log[-2:] == sends  # nothing was read after the answer began
    assert "larger than the service's limit" in client.body["detail"]


def test_a_body_within_the_limit_reaches_the_app():
    client = Client([50, 50])
    assert call(client, 100) == ["http.request", "http.request"]
    assert [entry for entry in client.log if entry[0] == "send"][0] == ("send", "http.response.start", 200)


@pytest.mark.parametrize("chunks, max_bytes, drained", [
    ([10, 10, 10], 1000, 30),  # to the end
    ([10] * 10, 25, 30),  # stops once past max_bytes
    ([], 1000, 0),  # the client already went away
])
def test_drain_body_stops_at_the_end_or_the_budget(chunks: list[int], max_bytes: int, drained: int):
    assert asyncio.run(drain_body(Client(chunks).receive, max_bytes, max_seconds=5.0)) == drained


def test_drain_body_gives_up_on_a_client_that_stops_sending():
    client = Client([10], never_ends=True)
    assert asyncio.run(drain_body(client.receive, 1000, max_seconds=0.05)) == 10
