"""`make setup` (behind `make demo` and `make test`) shows pip's own output and fails when pip fails.

The Makefile runs in a scratch folder whose .venv/bin/pip is a stand-in that prints what real pip
would and exits with the status under test; .venv/bin/python runs this interpreter.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, child_environment

WARNING = "WARNING: Location 'file:///opt/pypi-more/simple/x/' is ignored: it is neither a file nor a directory."
FAKE_PIP = """#!/bin/sh
echo "{warning}" >&2
case "$*" in
  *"{failing}"*) echo "ERROR: No matching distribution found for {failing}" >&2; exit 1;;
esac
echo "pip $*" >> "$(dirname "$0")/pip.log"
"""


@pytest.mark.parametrize("failing, status, ran", [
    ("requirements.txt", 2, []),
    ("-e .", 2, ["-r requirements.txt"]),
    ("nothing", 0, ["-r requirements.txt", "--no-deps -e ."]),
])
def test_setup_fails_with_pips_message(tmp_path: Path, failing: str, status: int, ran: list[str]):
    for name in ("Makefile", "requirements.txt", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "pip").write_text(FAKE_PIP.format(warning=WARNING, failing=failing))
    for tool in ("python", "pip"):
        (bin_dir / tool).chmod(0o755)
    result = subprocess.run(["make", "setup"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env=child_environment({"PYTHONPATH": str(PROJECT_ROOT)}))
    assert result.returncode == status, result.stdout + result.stderr
    assert WARNING in result.stderr  # pip's output reaches the user unfiltered
    log = bin_dir / "pip.log"
    calls = log.read_text().splitlines() if log.exists() else []
    assert [call.replace("pip install -q --disable-pip-version-check ", "") for call in calls] == ran
    assert (tmp_path / ".venv" / ".installed").exists() == (status == 0)
    if status:
        assert f"ERROR: No matching distribution found for {failing}" in result.stderr
