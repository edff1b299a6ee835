"""Shared fixtures. Qt runs offscreen; nothing here touches the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path("shared") / "fixtures" / "roboflow-real"


def find_real_exports() -> Path | None:
    """The team's real Roboflow exports: ``$TRUS_REAL_EXPORTS``, else ``shared/fixtures/roboflow-real``
    beside the checkout or beside any folder above it (a clone elsewhere, e.g. for CI, still finds
    the workspace's copy), else ``/work/shared/...``; None when there is none."""
    override = os.environ.get("TRUS_REAL_EXPORTS")
    candidates = [Path(override)] if override else []
    candidates += [folder / FIXTURES for folder in PROJECT_ROOT.parents] + [Path("/work") / FIXTURES]
    return next((path for path in candidates if path.is_dir()), None)


REAL_EXPORTS = find_real_exports()


@pytest.fixture
def real_exports() -> Path:
    """The real Roboflow exports (see :func:`find_real_exports`); skipped, saying so, when absent."""
    if REAL_EXPORTS is None:
        pytest.skip("real Roboflow exports not found: set TRUS_REAL_EXPORTS to shared/fixtures/roboflow-real")
    return REAL_EXPORTS
