"""What both sides of the guarded Roboflow client share: the dataset version address, the key, scrubbing.

:mod:`pipeline.ingest.roboflow.client` (this process) starts :mod:`pipeline.ingest.roboflow.child`
(a child interpreter that drives the real client); both import this module and neither imports
the other's code, so there is no import cycle.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import quote

from pipeline.ingest.records import IngestError

API_KEY_VARIABLE = "ROBOFLOW_API_KEY"
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SOURCE = re.compile(r"roboflow:([^/\s]+)/([^/\s]+)/(\d+)")
_KEY_IN_URL = re.compile(r"(api_key=)[^&\s'\"]+")


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


def scrub(text: str, api_key: str) -> str:
    """``text`` with the key (plain or URL-quoted, and any ``api_key=`` value) replaced by ``***``."""
    for form in {api_key, quote(api_key, safe="")} - {""}:
        text = text.replace(form, "***")
    return _KEY_IN_URL.sub(r"\1***", text)
