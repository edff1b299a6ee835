"""Shared fixtures. Qt runs offscreen; nothing here touches the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
REAL_EXPORTS = PROJECT_ROOT.parent / "shared" / "fixtures" / "roboflow-real"


@pytest.fixture
def real_exports() -> Path:
    """The real Roboflow exports in ../shared/fixtures (skipped when the folder is absent)."""
    if not REAL_EXPORTS.is_dir():
        pytest.skip(f"{REAL_EXPORTS} not present")
    return REAL_EXPORTS
