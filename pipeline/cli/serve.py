"""``trus serve``: the segmentation service and its browser gallery (:mod:`pipeline.serve`) on uvicorn.

The model is loaded once, before the port is bound, so a bad model is a one-line error and no
server starts. ``TRUS_API_TOKEN`` (read from the environment only, never an option: options show
in ``ps``) makes every endpoint but ``/healthz`` and the static pages require
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.common import Precision, PrecisionChoice, check_spacing_options, load_segmenter, one_line_errors, say
from pipeline.imaging.depth_scale import TICK_MM
from pipeline.layout import MODEL_FILE

TOKEN_VARIABLE = "TRUS_API_TOKEN"
LOOPBACK = ("127.0.0.1", "::1", "localhost")
log = logging.getLogger("pipeline.cli")


def serve(
    model: Annotated[Path, typer.Option(help="Exported ONNX model.")] = MODEL_FILE,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 serves this machine only. "
                                           f"Set {TOKEN_VARIABLE} before binding to a network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(help="Largest request, MiB (all its files); larger: 413.")] = 64.0,
    max_files: Annotated[int, typer.Option(help="Most files in one request; more: 413.")] = 32,
    queue: Annotated[int, typer.Option(help="Most requests in progress at once; more: 503 with Retry-After.")] = 16,
    workers: Annotated[int, typer.Option(help="Threads that decode, run the model and encode.")] = 2,
    threads: Annotated[int | None, typer.Option(
        min=1, help="ONNX Runtime's threads for the network (default: the physical cores); give each of "
                    "several service processes on one machine its share.")] = None,
    tick_mm: Annotated[float, typer.Option("--tick-mm", help="mm between the depth scale's interval ticks.")]
    = TICK_MM,
    precision: Precision = PrecisionChoice.auto,
) -> None:
    """Serve the model over HTTP: POST /v1/segment, GET /v1/model, GET /healthz, the gallery at /, docs at /docs."""
    with one_line_errors():
        import uvicorn  # the [serve] extra

        from pipeline.serve.limits import ServeLimits
        from pipeline.serve.service import ServeConfig, create_app

        check_spacing_options(None, tick_mm)
        limits = ServeLimits(max_upload_mb=max_upload_mb, max_files=max_files, queue=queue, workers=workers)
        token = os.environ.get(TOKEN_VARIABLE) or None
        segmenter = load_segmenter(model, precision, threads)
    if host not in LOOPBACK and token is None:
        say(f"serving on {host} without {TOKEN_VARIABLE}: anyone who can reach this port can use the model", "warning")
    say(f"serve: {segmenter.path.name} ({segmenter.choice.reason}) on http://{host}:{port}/ "
        f"(token {'required' if token else 'off'})")
    app = create_app(ServeConfig(segmenter, limits, token, tick_mm))
    uvicorn.run(app, host=host, port=port, log_level="info")
