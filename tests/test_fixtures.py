"""The committed real-export fixtures: complete, small, and a missing or altered file fails loudly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import CHECKSUMS, PROJECT_ROOT, REAL_EXPORTS, missing_real_export_files

ROOT = PROJECT_ROOT / REAL_EXPORTS
EXTRA = {CHECKSUMS, "PROVENANCE.md"}


def test_every_fixture_file_is_listed_and_intact(real_exports: Path):
    listed = {line.split(maxsplit=1)[1] for line in (real_exports / CHECKSUMS).read_text().splitlines()}
    present = {path.relative_to(real_exports).as_posix() for path in real_exports.rglob("*") if path.is_file()}
    assert present - EXTRA == listed and len(listed) == 29
    assert missing_real_export_files(real_exports) == []
    assert sum(path.stat().st_size for path in real_exports.rglob("*") if path.is_file()) < 1_000_000
    provenance = (real_exports / "PROVENANCE.md").read_text()
    for fact in ("97c3fa553bf1c8a85e975b09c6954ce7a30fa00d", "3573e52f01a4eb52ff768b6224ee5282833a6f3a", "CC BY 4.0"):
        assert fact in provenance


@pytest.mark.parametrize("damage, problem", [
    ("delete", "DHCN_dataset.v1i.png-mask-semantic/test/_classes.csv: missing"),
    ("edit", "DHCN_dataset.v1i.png-mask-semantic/test/_classes.csv: differs from its SHA-256"),
    ("no-checksums", f"{CHECKSUMS}: missing"),
])
def test_a_missing_or_altered_fixture_is_named(tmp_path: Path, damage: str, problem: str):
    copy = shutil.copytree(ROOT, tmp_path / "roboflow-real")
    target = copy / "DHCN_dataset.v1i.png-mask-semantic" / "test" / "_classes.csv"
    if damage == "delete":
        target.unlink()
    elif damage == "edit":
        target.write_text(target.read_text() + "\n")
    else:
        (copy / CHECKSUMS).unlink()
    problems = missing_real_export_files(copy)
    assert len(problems) == 1 and problems[0].startswith(str(copy)) and problem in problems[0]
