"""A fake Roboflow API on 127.0.0.1 that the real ``roboflow`` client (1.7.x) talks to in tests.

It serves exactly the calls the client makes for a download and an upload, in the shapes the
client reads (see ``roboflow/__init__.py``, ``core/workspace.py``, ``core/project.py``,
``core/version.py``, ``adapters/rfapi.py``):

========================================  ===========================================================
``POST /?api_key=K``                      key check: ``{"workspace": ws, ...}``; bad key: 401
``GET /WS?api_key=K``                     ``{"workspace": {"name", "url", "projects", "members"}}``
``GET /WS/PROJ?api_key=K``                ``{"workspace", "project": {...}, "versions": [...]}``
``GET /WS/PROJ/V?api_key=K&nocache=true`` ``{"version": {"images": n > 0, "generating": false, ...}}``
``GET /WS/PROJ/V/FMT?api_key=K&nocache=``  202 ``{"progress": p}`` while generating, then 200
                                          ``{"export": {"link": BASE/files/NAME.zip, ...}}``
``GET /files/NAME.zip``                   the zip with Content-Length (the storage link: no key)
``POST /dataset/PROJ/upload?api_key=K``   multipart ``name``, ``split``, ``file``: ``{"success": true, "id"}``
========================================  ===========================================================

Errors use Roboflow's JSON shape ``{"error": {"message", "type", "hint", ...}}``: a bad key gets
401 (the body echoes the key, as the real API does, so scrubbing is exercised), an unknown
workspace, project or version 404, an unknown export format 400. Failure modes are attributes:
``generating_polls`` (None: forever), ``version_generating``, ``link_status`` (e.g. 403, an
expired link), ``corrupt_zip``, ``listed_exports``, ``fail_uploads_after``. Every request is
recorded in ``requests``, every upload in ``uploads``.
"""

from __future__ import annotations

import email
import io
import json
import socket
import threading
import uuid
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes


def zip_folder(folder: Path) -> bytes:
    """The bytes of a zip of ``folder``'s files, paths relative to it (as Roboflow's exports are)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def refused_url() -> str:
    """A 127.0.0.1 URL on a port nobody listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class FakeRoboflow:
    """The fake API; ``with FakeRoboflow(...) as fake:`` serves on ``fake.url`` until the block ends."""

    def __init__(self, api_key: str, exports: dict[str, bytes], workspace: str = "hospital-urology",
                 project: str = "prostate-trus", version: int = 1, images: int = 136) -> None:
        self.api_key, self.exports = api_key, exports
        self.workspace, self.project, self.version, self.images = workspace, project, version, images
        self.generating_polls: int | None = 0
        self.version_generating = False
        self.link_status: int | None = None
        self.corrupt_zip = False
        self.listed_exports: list[str] = []  # formats the version lists as exported (the client skips polling)
        self.fail_uploads_after: int | None = None  # uploads beyond this many answer HTTP 500
        self.requests: list[Recorded] = []
        self.uploads: list[dict] = []
        self.export_requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL (what ``API_URL`` must be)."""
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeRoboflow:
        """Serves on a free port in a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="fake-roboflow")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and closes the socket (bounded: 5 s for the thread)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self) -> FakeRoboflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # The API's answers: (status, JSON body) or (status, raw bytes, content type).

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: bytes, ctype: str) -> tuple:
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["files"]:
            return self._file(parts[-1])
        if query.get("api_key") != [self.api_key]:
            key = query.get("api_key", [""])[0]
            return 401, {"error": {"message": "This API key does not exist (or has been revoked).", "status": 401,
                                   "type": "OAuthException", "hint": "You may retrieve your API key via the Roboflow "
                                   "Dashboard. Go to Account > Roboflow Keys to retrieve yours.", "key": key}}
        if method == "POST" and not parts:
            return 200, {"welcome": "Welcome to the Roboflow API.", "instructions": "You are successfully "
                         "authenticated.", "docs": "https://docs.roboflow.com", "workspace": self.workspace}
        if method == "POST" and len(parts) == 3 and parts[0] == "dataset" and parts[2] == "upload":
            return self._upload(parts[1], query, body, ctype)
        if method != "GET" or not 1 <= len(parts) <= 4:
            return 404, _error(f"Unsupported request {method} {path}")
        if parts[0] != self.workspace:
            return 404, _error(f"Unsupported get request. Workspace with ID `{parts[0]}` does not exist or cannot "
                               "be loaded due to missing permissions.")
        if len(parts) == 1:
            return 200, {"workspace": {**self._workspace_info(), "projects": [self._project_info()]}}
        if parts[1] != self.project:
            return 404, _error(f"Unsupported get request. Dataset with ID `{parts[1]}` does not exist.")
        if len(parts) == 2:
            return 200, {"workspace": self._workspace_info(), "project": self._project_info(),
                         "versions": [self._version_info()]}
        if parts[2] != str(self.version):
            return 404, _error(f"Version `{parts[2]}` of `{self.workspace}/{self.project}` does not exist.")
        if len(parts) == 3:
            return 200, {"workspace": self._workspace_info(), "project": self._project_info(),
                         "version": self._version_info()}
        return self._export(parts[3])

    def _export(self, export_format: str) -> tuple:
        if export_format not in self.exports:
            return 400, _error(f"Unsupported export format `{export_format}`.")
        self.export_requests += 1
        if self.generating_polls is None or self.export_requests <= self.generating_polls:
            return 202, {"ready": False, "progress": 0.25}
        name = f"{self.project}-{self.version}-{export_format}"
        return 200, {"workspace": self._workspace_info(), "project": self._project_info(),
                     "version": self._version_info(),
                     "export": {"format": export_format, "name": name, "size": 0.1,
                                "link": f"{self.url}/files/{name}.zip?X-Goog-Expires=600&X-Goog-Signature=f00d"}}

    def _file(self, name: str) -> tuple:
        if self.link_status is not None:
            return self.link_status, (b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
                                      b"<Message>The provided token has expired.</Message></Error>"), "application/xml"
        export_format = name.removesuffix(".zip").removeprefix(f"{self.project}-{self.version}-")
        if export_format not in self.exports:
            return 404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml"
        data = self.exports[export_format]
        return 200, data[: len(data) // 2] if self.corrupt_zip else data, "application/zip"

    def _upload(self, project: str, query: dict[str, list[str]], body: bytes, ctype: str) -> tuple:
        if project != self.project:
            return 404, _error(f"Dataset with ID `{project}` does not exist.")
        if self.fail_uploads_after is not None and len(self.uploads) >= self.fail_uploads_after:
            return 500, _error("Internal error while storing the image.")
        message = email.message_from_bytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        fields = {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
                  for part in message.get_payload()}
        self.uploads.append({"name": fields["name"].decode(), "split": fields["split"].decode(),
                             "file": fields["file"], "batch": query.get("batch", [None])[0]})
        return 200, {"success": True, "id": uuid.uuid4().hex[:20]}

    def _workspace_info(self) -> dict:
        return {"name": "Hospital Urology", "url": self.workspace, "members": 3}

    def _project_info(self) -> dict:
        return {"id": f"{self.workspace}/{self.project}", "name": "prostate-trus", "type": "instance-segmentation",
                "annotation": "prostate-trus", "classes": {"gland": 120, "lesion": 50}, "colors": {},
                "created": 1700000000.0, "updated": 1700000500.0, "images": self.images, "public": False,
                "splits": {"train": 95, "valid": 27, "test": 14}, "unannotated": 8, "versions": 1}

    def _version_info(self) -> dict:
        return {"id": f"{self.workspace}/{self.project}/{self.version}", "name": "v1", "created": 1700000600.0,
                "images": 0 if self.version_generating else self.images, "generating": self.version_generating,
                "progress": 0.5 if self.version_generating else 1.0, "splits": {"train": 95, "valid": 27, "test": 14},
                "augmentation": {}, "preprocessing": {"auto-orient": True}, "exports": list(self.listed_exports)}


def _error(message: str) -> dict:
    return {"error": {"message": message, "type": "GraphMethodException", "hint": "Check the URL."}}


def _handler(fake: FakeRoboflow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = parse_qs(split.query)
            fake.requests.append(Recorded(method, split.path, query, body))
            status, payload, *ctype = fake.answer(method, split.path, query, body, self.headers.get("Content-Type", ""))
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype[0] if ctype else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, *args: object) -> None:  # quiet: no request lines on stderr
            pass

    return Handler
