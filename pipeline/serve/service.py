"""The FastAPI application of ``trus serve`` (endpoints: the README's "Segmentation service").

- ``GET /healthz``: liveness, never behind the token.
- ``GET /v1/model``: the model's card (:func:`pipeline.serve.responses.model_json`).
- ``POST /v1/segment``: one or many files (multipart field ``files``); JSON per file and frame,
  or with ``?output=mask|overlay`` one frame's PNG, the bytes ``trus segment`` writes for it.
- ``GET /``: the gallery page (static files in ``pipeline/serve/static``), ``/docs``: OpenAPI.

A request is all or nothing: every file is checked (type by content: 415; readable: 422)
before any is segmented, and the first bad one is named in a one-line ``detail``. No file name,
DICOM tag or pixel reaches the log: only counts, sizes, statuses and times.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum
from functools import partial
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from pipeline.imaging.depth_scale import TICK_MM
from pipeline.imaging.frames import Frame
from pipeline.inference.frame_outputs import FrameOutputs, frame_outputs, mask_png, overlay_png, prepare_frame
from pipeline.inference.predictor import Segmenter
from pipeline.inference.runtime import file_sha256
from pipeline.serve.limits import BodySizeLimit, InferenceQueue, QueueFull, ServeLimits
from pipeline.serve.responses import frame_json, model_json, model_summary
from pipeline.serve.uploads import Upload, UploadError, read_upload, upload_kind

log = logging.getLogger("pipeline.serve")
STATIC = resources.files("pipeline.serve") / "static"
API_TITLE = "TRUS segmentation service"


class Output(str, Enum):
    """What ``POST /v1/segment`` returns: JSON for every file, or one frame's mask or overlay PNG."""

    json = "json"
    mask = "mask"
    overlay = "overlay"


@dataclass(frozen=True)
class ServeConfig:
    """What the service runs with: the loaded model, its limits, the token (None: open), the depth-scale interval."""

    segmenter: Segmenter
    limits: ServeLimits = ServeLimits()
    token: str | None = None
    tick_mm: float = TICK_MM


def _segment_frame(config: ServeConfig, queue: InferenceQueue, frame: Frame,
                   spacing_mm: float | None) -> FrameOutputs:
    """One frame through the per-frame code path of ``trus segment``; the network under the queue's lock."""
    ready = prepare_frame(config.segmenter, frame, config.tick_mm, spacing_mm)
    with queue.network_lock:
        segmentation = config.segmenter.segment_prepared(ready.prepared)
    return frame_outputs(segmentation, ready.calibration, config.segmenter.contract.threshold)


def _segment_json(config: ServeConfig, queue: InferenceQueue, uploads: list[Upload], spacing_mm: float | None,
                  images: bool) -> list[dict[str, Any]]:
    """Every upload's frames as JSON (a worker's part); all files are read before any is segmented."""
    frames = [read_upload(upload) for upload in uploads]
    results = []
    for upload, file_frames in zip(uploads, frames):
        entries = []
        for index, frame in enumerate(file_frames):
            outputs = _segment_frame(config, queue, frame, spacing_mm)
            pictures = {"mask": mask_png(outputs.masks), "overlay": overlay_png(frame.gray, outputs.masks)} \
                if images else None
            entries.append(frame_json(index, frame.gray, outputs, pictures))
        results.append({"file": upload.name, "kind": upload_kind(upload), "frames": entries})
    return results


def _segment_png(config: ServeConfig, queue: InferenceQueue, upload: Upload, frame_index: int,
                 spacing_mm: float | None, output: Output) -> bytes:
    """One frame's mask or overlay PNG bytes (a worker's part)."""
    frames = read_upload(upload)
    if not 0 <= frame_index < len(frames):
        raise UploadError(422, f"{upload.name}: frame {frame_index} requested, the file has {len(frames)}")
    frame = frames[frame_index]
    outputs = _segment_frame(config, queue, frame, spacing_mm)
    return mask_png(outputs.masks) if output is Output.mask else overlay_png(frame.gray, outputs.masks)


def _token_check(token: str | None):  # noqa: ANN202 (a FastAPI dependency)
    """The dependency that requires ``Authorization: Bearer <token>`` (constant-time comparison) when a token is set."""
    bearer = HTTPBearer(auto_error=False, description="TRUS_API_TOKEN of the service")

    def check(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:  # noqa: B008
        if token is None:
            return
        given = b"" if credentials is None else credentials.credentials.encode()
        if not hmac.compare_digest(given, token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return check


def create_app(config: ServeConfig) -> FastAPI:
    """The service's application for an already loaded model (see the module's docstring)."""
    limits = config.limits
    queue = InferenceQueue(limits.queue, limits.workers)
    card = model_json(config.segmenter, file_sha256(config.segmenter.path))
    summary = model_summary(card)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("serving %s (%s); queue %d, workers %d, token %s", card["file"], card["choice"], limits.queue,
                 limits.workers, "required" if config.token else "off")
        yield
        queue.close()

    app = FastAPI(title=API_TITLE, version="1", lifespan=lifespan,
                  description="Prostate TRUS segmentation on the product's ONNX runtime.")
    app.state.queue = queue  # for tests and operators' tools

    @app.exception_handler(RequestValidationError)
    async def one_line_validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        """A bad query or form (``frame=-1``, no ``files``) as one line, like every other error."""
        return _error(422, "; ".join(f"{' '.join(str(part) for part in item['loc'])}: {item['msg']}"
                                     for item in error.errors()))

    guarded = [Depends(_token_check(config.token))]

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness: the model is loaded and requests are admitted (never behind the token)."""
        return {"status": "ok", "model": summary, "queued": queue.admitted, "queue_limit": queue.limit}

    @app.get("/v1/model", dependencies=guarded, tags=["model"])
    async def model() -> dict[str, Any]:
        """The model's card: the file that runs and why, and its contract (classes, preprocessing, metrics, versions)."""
        return card

    @app.post("/v1/segment", dependencies=guarded, tags=["segment"], response_model=None,
              responses={200: {"content": {"image/png": {}}}, 413: {}, 415: {}, 422: {}, 503: {}})
    async def segment(
        files: Annotated[list[UploadFile], File(description="PNG, JPEG, BMP, TIFF or DICOM frames")],
        output: Annotated[Output, Query(description="json; or mask / overlay: one file's PNG")] = Output.json,
        frame: Annotated[int, Query(ge=0, description="with output=mask|overlay: the frame of a multi-frame "
                                                      "DICOM")] = 0,
        spacing_mm: Annotated[float | None, Query(gt=0, description="mm per px for frames without a DICOM "
                                                                    "spacing or a readable depth scale")] = None,
        images: Annotated[bool, Query(description="embed each frame's mask and overlay PNGs in the JSON")] = False,
    ) -> Response | dict[str, Any]:
        """Segments frames: per file and frame, the classes' areas (px, mm²) and outlines, plane and review flag."""
        start = time.perf_counter()
        if len(files) > limits.max_files:
            _log_request(files, 413, start)
            return _error(413, f"{len(files)} files in one request; the limit is {limits.max_files} "
                               f"(trus serve --max-files)")
        uploads: list[Upload] = []
        try:
            async with queue.admission():
                uploads = [Upload(upload.filename or f"file {number}", await upload.read())
                           for number, upload in enumerate(files, 1)]
                for upload in uploads:
                    upload_kind(upload)
                if output is not Output.json and len(uploads) != 1:
                    raise UploadError(422, f"output={output.value} returns one frame's PNG; send one file, "
                                           f"not {len(uploads)}")
                if output is Output.json:
                    body: Any = {"model": summary, "files": await queue.run(
                        partial(_segment_json, config, queue, uploads, spacing_mm, images))}
                else:
                    body = Response(await queue.run(partial(_segment_png, config, queue, uploads[0], frame,
                                                            spacing_mm, output)), media_type="image/png")
        except UploadError as error:
            _log_request(files, error.status, start)
            return _error(error.status, str(error))
        except QueueFull:
            _log_request(files, 503, start)
            return _error(503, f"the service is busy ({limits.queue} requests in progress); retry later",
                          {"Retry-After": str(limits.retry_after_s)})
        _log_request(files, 200, start)
        return body

    @app.get("/", include_in_schema=False)
    async def gallery() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_upload_bytes)
    return app


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A JSON error response, ``{"detail": "<one line>"}``."""
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _log_request(files: list[UploadFile], status: int, start: float) -> None:
    """Logs a segmentation request by counts and sizes only: never a file name or its content."""
    log.info("segment: %d file(s), %d bytes -> %d in %.0f ms", len(files), sum(upload.size or 0 for upload in files),
             status, 1000 * (time.perf_counter() - start))
