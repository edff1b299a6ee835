"""dvc.yaml and cv/dvc.yaml list, for every stage, exactly the pipeline code the stage runs.

Each stage's module (``python -m pipeline.stages.<module>`` in its ``cmd``) is imported in a fresh interpreter; the ``pipeline`` modules it loads, plus those
its code imports inside functions (read from the source), are the code it depends on. Every
one that is not an empty file must be a ``deps:`` file or lie inside a ``deps:`` folder, and every ``pipeline/`` dep must
hold at least one of them. A stage lists its own file, never the ``pipeline/stages`` folder. The cross-validation
stages (cv/dvc.yaml) run the train and evaluate modules with ``--fold``, and ``foreach`` stages keep their deps in ``do``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import PurePosixPath

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, child_environment

STAGES = ("pull", "preprocess", "split", "train", "evaluate", "export", "ood")
MODULES = (*STAGES, "cv_report")
PIPELINES = {"dvc.yaml": STAGES, "cv/dvc.yaml": ("train", "evaluate", "cv_report")}
"""Per pipeline file, its stages; each stage runs ``pipeline.stages.<its name>``."""
CASES = [(file, stage) for file, stages in PIPELINES.items() for stage in stages]

# Runs in the child: import the stage, then follow every `pipeline` import in the loaded modules'
# source (function-level ones included) until no new module appears; print their files.
CLOSURE = r"""
import ast, importlib, json, sys
from pathlib import Path

def load(name):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise

importlib.import_module(sys.argv[1])
done = set()
while todo := [m for n, m in list(sys.modules.items()) if n.split(".")[0] == "pipeline" and n not in done]:
    for module in todo:
        done.add(module.__name__)
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] == "pipeline":
                load(node.module)
                for alias in node.names:
                    load(f"{node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "pipeline":
                        load(alias.name)
root = Path.cwd().resolve()
files = [Path(sys.modules[n].__file__).resolve() for n in done]
# an empty file (pipeline/__init__.py) runs nothing; DVC warns about empty deps, so they are not listed
print(json.dumps(sorted(f.relative_to(root).as_posix() for f in files if f.stat().st_size)))
"""


@pytest.fixture(scope="module")
def stage_code() -> dict[str, set[str]]:
    """Per stage module, the project-relative files of every ``pipeline`` module it runs (the children run in parallel)."""
    children = {stage: subprocess.Popen([sys.executable, "-c", CLOSURE, f"pipeline.stages.{stage}"], cwd=PROJECT_ROOT,
                                        env=child_environment({"PYTHONPATH": str(PROJECT_ROOT)}),
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for stage in MODULES}
    code = {}
    for stage, child in children.items():
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, f"{stage}: {err}"
        code[stage] = set(json.loads(out))
    return code


def stage_definition(file: str, stage: str) -> dict:
    """A stage of a pipeline file as written (a ``foreach`` stage's ``do`` block)."""
    definition = yaml.safe_load((PROJECT_ROOT / file).read_text())["stages"][stage]
    return definition["do"] if "foreach" in definition else definition


def code_deps(stage: str, file: str = "dvc.yaml") -> list[str]:
    """The ``pipeline/`` entries of the stage's ``deps:`` in a pipeline file."""
    return [dep for dep in stage_definition(file, stage)["deps"] if dep.startswith("pipeline")]


def covers(dep: str, file: str) -> bool:
    return file == dep or PurePosixPath(file).is_relative_to(dep)


@pytest.mark.parametrize("file, stage", CASES)
def test_stage_deps_list_exactly_the_code_it_runs(stage_code: dict[str, set[str]], file: str, stage: str):
    assert stage_definition(file, stage)["cmd"].split()[:3] == ["python", "-m", f"pipeline.stages.{stage}"]
    code, deps = stage_code[stage], code_deps(stage, file)
    assert f"pipeline/stages/{stage}.py" in code and len(code) > 10  # the closure really ran
    assert [file for file in sorted(code) if not any(covers(dep, file) for dep in deps)] == []
    assert [dep for dep in deps if not any(covers(dep, file) for file in code)] == []
    assert all((PROJECT_ROOT / dep).exists() for dep in deps)
    assert len(deps) == len(set(deps))


@pytest.mark.parametrize("file, stage", CASES)
def test_stage_lists_its_own_file_and_no_other_stage(file: str, stage: str):
    deps = code_deps(stage, file)
    assert {f"pipeline/stages/{stage}.py", "pipeline/stages/runner.py"} <= set(deps)
    others = [f"pipeline/stages/{other}.py" for other in MODULES if other != stage]
    assert [dep for dep in deps if any(covers(dep, file) for file in others)] == []


def test_dvcignore_keeps_bytecode_out_of_the_hashes():
    patterns = [line.strip() for line in (PROJECT_ROOT / ".dvcignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns == ["__pycache__/", "*.pyc"]
