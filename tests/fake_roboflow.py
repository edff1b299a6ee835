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
``POST /WS/PROJ/search?api_key=K``        JSON ``offset``, ``limit``, ``fields`` (``tag``): ``{"results":
                                          [{"id", "name", ...}], "total"}`` (``Project.search``)
``POST /WS/images/ID/metadata?api_key=K`` JSON ``addTags``/``removeTags``: ``{"success": true}``; unknown
                                          image 404 (``Project.update_image_metadata``)
``POST /dataset/PROJ/annotate/ID?api_key= JSON ``{"annotationFile": COCO text, "labelmap"}``, query ``name``,
K&name=N[&overwrite=true]                 ``overwrite``, ``addToDataset``: ``{"success": true}``; an annotated
[&addToDataset=false]``                   image without overwrite 409 "already annotated"; unknown image 404
                                          (``Project.save_annotation``)
========================================  ===========================================================

The project's images are those of the ``coco-segmentation`` export (read when first needed),
each named as Roboflow names an uploaded image, by its original name (``P001_F01.png`` for
the export file ``P001_F01_png.rf.<hash>.jpg``), with a stable 20-character id; tests add
more with :meth:`FakeRoboflow.add_image`. Tags and saved annotations are kept per image, and
the export zips served from then on reflect them, as a version generated after the change
would: the image's annotations replaced by the saved file's (categories matched by name, the
client's placeholder for an image without objects skipped) and its tags in ``extra.user_tags``.

Errors use Roboflow's JSON shape ``{"error": {"message", "type", "hint", ...}}``: a bad key gets
401 (the body echoes the key, as the real API does, so scrubbing is exercised), an unknown
workspace, project or version 404, an unknown export format 400. Failure modes are attributes:
``generating_polls`` (None: forever), ``version_generating``, ``link_status`` (e.g. 403, an
expired link), ``corrupt_zip``, ``listed_exports``, ``fail_uploads_after``, ``refuse_annotations`` (image name ->
HTTP status of its annotation save), ``disconnect_after_saves`` (later annotation saves get the
connection closed without an answer: a network failure). Every request is recorded in
``requests``, every upload in ``uploads``, every search body in ``searches``, every tag change
in ``tag_updates``, every annotation save in ``annotation_saves``.
"""

from __future__ import annotations

import email
import hashlib
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

from pipeline.ingest.names import parse_export_name

COCO_FORMAT = "coco-segmentation"
ANNOTATIONS = "_annotations.coco.json"
DISCONNECT = object()  # what FakeRoboflow.answer returns to close the connection without an answer


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
        self.refuse_annotations: dict[str, int] = {}  # image name -> HTTP status of its annotation save
        self.disconnect_after_saves: int | None = None  # annotation saves beyond this many: connection closed
        self.requests: list[Recorded] = []
        self.uploads: list[dict] = []
        self.searches: list[dict] = []
        self.tag_updates: list[dict] = []
        self.annotation_saves: list[dict] = []
        self._images: list[dict] | None = None
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
        if method == "POST" and len(parts) == 4 and parts[0] == "dataset" and parts[2] == "annotate":
            return self._annotate(parts[1], parts[3], query, body)
        if method == "POST" and len(parts) == 3 and parts[2] == "search":
            return self._search(parts[0], parts[1], body)
        if method == "POST" and len(parts) == 4 and parts[1] == "images" and parts[3] == "metadata":
            return self._metadata(parts[0], parts[2], body)
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
        data = self._reflecting_changes(self.exports[export_format])
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

    # The project's images: search, tags, annotation saves, and exports that reflect them.

    def project_images(self) -> list[dict]:
        """The project's images (``id``, ``name``, ``export_name``, ``split``, ``tags``, ``annotation``: the last
        saved COCO file), built from the ``coco-segmentation`` export when first needed."""
        if self._images is None:
            self._images = []
            if COCO_FORMAT in self.exports:
                with zipfile.ZipFile(io.BytesIO(self.exports[COCO_FORMAT])) as archive:
                    for member in sorted(n for n in archive.namelist() if n.endswith(ANNOTATIONS)):
                        split = member.rpartition("/")[0]
                        for image in json.loads(archive.read(member))["images"]:
                            self.add_image(parse_export_name(image["file_name"]).original_name,
                                           export_name=image["file_name"], split=split)
        return self._images

    def add_image(self, name: str, export_name: str | None = None, split: str = "train") -> dict:
        """Adds an image named ``name`` to the project (a second one of a name is allowed, as on Roboflow)."""
        images = self.project_images()
        image = {"id": hashlib.sha1(f"{len(images)}:{export_name or name}".encode()).hexdigest()[:20],
                 "name": name, "export_name": export_name, "split": split, "tags": [], "annotation": None}
        images.append(image)
        return image

    def _image(self, image_id: str) -> dict | None:
        return next((image for image in self.project_images() if image["id"] == image_id), None)

    def _search(self, workspace: str, project: str, body: bytes) -> tuple:
        if (workspace, project) != (self.workspace, self.project):
            return 404, _error(f"Dataset `{workspace}/{project}` does not exist.")
        payload = json.loads(body or b"{}")
        self.searches.append(payload)
        offset, limit = int(payload.get("offset", 0)), int(payload.get("limit", 50))
        if not 1 <= limit <= 250:
            return 400, _error("limit must be between 1 and 250")
        matching = [image for image in self.project_images() if payload.get("tag") in (None, *image["tags"])]
        fields = payload.get("fields") or ["id", "created", "name", "labels"]
        results = [{**{field: image[field] for field in fields if field in ("id", "name", "split", "tags")},
                    "mediaType": "image"} for image in matching[offset: offset + limit]]
        return 200, {"results": results, "total": len(matching)}

    def _metadata(self, workspace: str, image_id: str, body: bytes) -> tuple:
        if workspace != self.workspace:
            return 404, _error(f"Workspace with ID `{workspace}` does not exist.")
        image = self._image(image_id)
        if image is None:
            return 404, _error(f"Image `{image_id}` does not exist.")
        payload = json.loads(body or b"{}")
        self.tag_updates.append({"image_id": image_id, **payload})
        image["tags"] = [tag for tag in dict.fromkeys(image["tags"] + payload.get("addTags", []))
                         if tag not in payload.get("removeTags", [])]
        return 200, {"success": True}

    def _annotate(self, project: str, image_id: str, query: dict[str, list[str]], body: bytes) -> tuple | object:
        if project != self.project:
            return 404, _error(f"Dataset with ID `{project}` does not exist.")
        image = self._image(image_id)
        if image is None:
            return 404, _error(f"Image `{image_id}` does not exist.")
        if self.disconnect_after_saves is not None and len(self.annotation_saves) >= self.disconnect_after_saves:
            return DISCONNECT
        status = self.refuse_annotations.get(image["name"])
        if status is not None:
            return status, _error(f"Annotation of `{image['name']}` refused.")
        try:
            document = json.loads(json.loads(body)["annotationFile"])
            if not (isinstance(document["images"], list) and isinstance(document["annotations"], list)):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return 400, _error("Could not parse the annotation file.")
        overwrite = query.get("overwrite") == ["true"]
        if image["annotation"] is not None and not overwrite:
            return 409, _error("Image already annotated; pass overwrite=true to replace it.")
        self.annotation_saves.append({"image_id": image_id, "name": query.get("name", [""])[0],
                                      "overwrite": overwrite, "add_to_dataset": query.get("addToDataset", [None])[0],
                                      "job_name": query.get("jobName", [None])[0], "document": document})
        image["annotation"] = document
        return 200, {"success": True}

    def _reflecting_changes(self, data: bytes) -> bytes:
        """An export zip with the saved annotations and tags of its images in its COCO files."""
        if self._images is None:
            return data  # nothing searched, tagged or annotated yet
        images = {image["export_name"]: image for image in self._images if image["export_name"]}
        if not any(image["annotation"] is not None or image["tags"] for image in images.values()):
            return data
        buffer = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
            for member in source.namelist():
                content = source.read(member)
                if member.endswith(ANNOTATIONS):
                    content = json.dumps(_with_changes(json.loads(content), images)).encode()
                out.writestr(member, content)
        return buffer.getvalue()

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


def _with_changes(coco: dict, images: dict[str, dict]) -> dict:
    """One export COCO file with its images' saved annotations (categories matched by name) and tags."""
    category_of = {category["name"]: category["id"] for category in coco["categories"]}
    superclass = next((c["name"] for c in coco["categories"] if c.get("supercategory") == "none"), "none")
    annotations = list(coco["annotations"])
    for entry in coco["images"]:
        image = images.get(entry["file_name"])
        if image is None:
            continue
        if image["tags"]:
            entry["extra"] = {**entry.get("extra", {}), "name": image["name"], "user_tags": list(image["tags"])}
        saved = image["annotation"]
        if saved is None:
            continue
        names = {category["id"]: category["name"] for category in saved["categories"]}
        own = {listed["id"] for listed in saved["images"]}
        annotations = [annotation for annotation in annotations if annotation["image_id"] != entry["id"]]
        for annotation in saved["annotations"]:
            if annotation["image_id"] not in own:
                continue  # the client's placeholder of an image without objects
            name = names[annotation["category_id"]]
            if name not in category_of:
                category_of[name] = max(category_of.values(), default=-1) + 1
                coco["categories"].append({"id": category_of[name], "name": name, "supercategory": superclass})
            annotations.append({**annotation, "image_id": entry["id"], "category_id": category_of[name]})
    coco["annotations"] = [{**annotation, "id": index} for index, annotation in enumerate(annotations)]
    return coco


def _error(message: str) -> dict:
    return {"error": {"message": message, "type": "GraphMethodException", "hint": "Check the URL."}}


def _handler(fake: FakeRoboflow) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            split = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            query = parse_qs(split.query)
            fake.requests.append(Recorded(method, split.path, query, body))
            answer = fake.answer(method, split.path, query, body, self.headers.get("Content-Type", ""))
            if answer is DISCONNECT:
                self.close_connection = True  # nothing written: the client sees the connection dropped
                return
            status, payload, *ctype = answer
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


def small_export_zip(folder: Path) -> bytes:
    """A small synthetic Roboflow COCO Segmentation export (2 patients x 3 frames, 256 x 192), written under
    ``folder`` and zipped as Roboflow serves it."""
    from pipeline.synthetic.roboflow_coco import SampleSpec, write_sample_export

    write_sample_export(folder / "src", seed=7, spec=SampleSpec(n_patients=2, frames_per_patient=3, frame_width=256,
                                                                frame_height=192))
    return zip_folder(folder / "src")
