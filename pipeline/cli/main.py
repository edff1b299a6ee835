"""The ``trus`` command: ``sample``, ``segment``, ``serve``, ``measure``, ``preprocess``, ``ingest``, ``frames``, ``upload``,
``upload-corrections``, ``compare``.

Each command lives in its own module of :mod:`pipeline.cli`. Errors print one line naming
the file and the problem and exit 2; ``trus --verbose COMMAND`` also prints the traceback
(see :mod:`pipeline.cli.common`).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipeline.cli.compare import compare
from pipeline.cli.frames import frames
from pipeline.cli.ingest import ingest
from pipeline.cli.measure import measure
from pipeline.cli.preprocess import preprocess
from pipeline.cli.sample import sample
from pipeline.cli.segment import segment
from pipeline.cli.serve import serve
from pipeline.cli.upload import upload, upload_corrections
from pipeline.logs import VERBOSE_VARIABLE, configure_console_logging

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Prostate TRUS segmentation tools.")


@app.callback()
def options(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log everything, tracebacks of "
                                                  "errors included, to stderr.")] = False) -> None:
    """Prostate TRUS segmentation tools."""
    configure_console_logging(verbose or os.environ.get(VERBOSE_VARIABLE) == "1")


for command in (sample, segment, serve, measure, preprocess, ingest, frames, upload, upload_corrections, compare):
    app.command()(command)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
