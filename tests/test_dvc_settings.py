"""The project's own DVC settings (``.dvc/config``, committed): DVC never calls home from a hospital's machine.

By default DVC sends a usage report to analytics.dvc.org after each command (a background process writes it to
a temporary file first, left behind when it cannot be sent) and checks updater.dvc.org for new releases. The
project turns both off in its repository config, which every clone and every ``dvc exp run`` reads; the settings
are read here with DVC's own parser, at the repository level only (not this machine's global or system config).
"""

from __future__ import annotations

import pytest
from dvc.config import Config

from tests.conftest import DVC_CONFIG, PROJECT_ROOT


@pytest.mark.parametrize("key", ["analytics", "check_update"])
def test_the_project_config_turns_off_what_would_call_home(key: str):
    repo_level = Config(dvc_dir=PROJECT_ROOT / DVC_CONFIG.parent, validate=True).load_one("repo")
    core = Config.validate(repo_level)["core"]  # typed, with DVC's defaults for what the file does not set
    assert core[key] is False, f"{DVC_CONFIG}: core.{key} is {core.get(key)!r}, not false"
