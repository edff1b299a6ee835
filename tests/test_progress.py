"""The bookkeeping of resumable, early-stoppable, multi-process training, table-driven and without a network.

``pipeline.training.progress`` (epochs done, best score, early stopping, the kept epoch),
``devices.resolve_runtime`` (what ``auto`` means with and without CUDA), ``distributed``
(torchrun's environment, the relaunch command, sharding, the collectives of two real gloo
processes, dying with torchrun's agent) and
``resume`` (the fingerprint, stale and unreadable states, RNG states, the DVCLive folder).
Training runs themselves (kill and resume, early stopping, two processes) are in
tests/test_resume.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

from pipeline.config import ParamsError, TrainParams
from pipeline.evaluation.summary import ClassSummary
from pipeline.training.devices import Runtime, choose_workers, resolve_runtime
from pipeline.training.distributed import (SINGLE, World, all_reduce_sum, barrier, broadcast_object, check_world,
                                           gather_objects, needs_launch, shard, threads_per_process,
                                           torchrun_arguments, world_from_environment)
from pipeline.training.loop import EpochMetrics
from pipeline.training.progress import Progress, advance, finished, improves, kept_epoch, stops_early
from pipeline.training.resume import (RESUME_ROOT, ResumeSpec, discard, fingerprint, load_state, read_folder,
                                      restore_rng_states, resume_folder, rng_states, save_state, write_folder)
from tests.conftest import PROJECT_ROOT, child_environment

# --- progress -------------------------------------------------------------------------------------------------

# validation scores of successive epochs -> (epoch, best_score, best_epoch, stale_epochs) after each
ADVANCE_CASES = [
    ([0.5], [(1, 0.5, 1, 0)]),
    ([0.5, 0.4, 0.5, 0.7, 0.6], [(1, 0.5, 1, 0), (2, 0.5, 1, 1), (3, 0.5, 1, 2), (4, 0.7, 4, 0), (5, 0.7, 4, 1)]),
    ([0.0, 0.0, 0.0], [(1, 0.0, 1, 0), (2, 0.0, 1, 1), (3, 0.0, 1, 2)]),  # a tie is no improvement
    ([0.1, 0.2, 0.3], [(1, 0.1, 1, 0), (2, 0.2, 2, 0), (3, 0.3, 3, 0)]),
]


@pytest.mark.parametrize("scores, expected", ADVANCE_CASES)
def test_advance_tracks_the_best_epoch_and_the_stale_ones(scores: list[float], expected: list[tuple]) -> None:
    progress, seen = Progress(), []
    for score in scores:
        progress = advance(progress, score)
        seen.append((progress.epoch, progress.best_score, progress.best_epoch, progress.stale_epochs))
    assert seen == expected
    assert Progress(**progress.as_dict()) == progress  # the resume state's round trip


@pytest.mark.parametrize("best, score, expected", [
    (None, 0.0, True), (0.5, 0.6, True), (0.5, 0.5, False), (0.5, 0.4, False), (0.0, 1e-9, True),
])
def test_improves_is_strict(best: float | None, score: float, expected: bool) -> None:
    assert improves(Progress(epoch=0 if best is None else 1, best_score=best), score) is expected


# (epochs done, stale epochs, train.epochs, patience) -> (stops_early, finished)
STOP_CASES = [
    (0, 0, 3, None, False, False),
    (2, 2, 3, None, False, False),  # no patience: never early
    (3, 0, 3, None, False, True),   # the budget is spent
    (1, 0, 3, 1, False, False),
    (2, 1, 3, 1, True, True),       # patience 1: the first epoch without a better score stops
    (3, 2, 5, 3, False, False),
    (4, 3, 5, 3, True, True),
    (5, 0, 5, 2, False, True),
]


@pytest.mark.parametrize("epoch, stale, epochs, patience, early, done", STOP_CASES)
def test_stops_early_and_finished(epoch: int, stale: int, epochs: int, patience: int | None, early: bool,
                                  done: bool) -> None:
    progress = Progress(epoch=epoch, best_score=0.5, best_epoch=epoch - stale, stale_epochs=stale)
    assert stops_early(progress, patience) is early
    assert finished(progress, epochs, patience) is done


@pytest.mark.parametrize("scores, keep, expected", [
    ([0.1, 0.3, 0.2], "last", 3), ([0.1, 0.3, 0.2], "best", 2), ([0.3, 0.3, 0.1], "best", 1),
    ([0.0, 0.0], "best", 1), ([0.0, 0.0], "last", 2), ([0.7], "best", 1), ([0.2, 0.4, 0.4, 0.9], "best", 4),
])
def test_kept_epoch(scores: list[float], keep: str, expected: int) -> None:
    assert kept_epoch(scores, keep) == expected


@pytest.mark.parametrize("scores, keep", [([], "last"), ([0.5], "first"), ([0.5], "Best")])
def test_kept_epoch_refuses_no_epoch_or_an_unknown_keep(scores: list[float], keep: str) -> None:
    with pytest.raises(ValueError, match="keep"):
        kept_epoch(scores, keep)


def test_epoch_metrics_round_trip_through_the_resume_state() -> None:
    summary = ClassSummary(dice=0.8, iou=0.7, frames_with_class=3, missed_frames=1, false_positive_frames=0,
                           frames_scored=3)
    metrics = EpochMetrics(2, 0.5, 0.6, {"gland": summary, "lesion": dataclasses.replace(summary, dice=0.2)}, 1e-4,
                           (0.51, 0.49))
    assert EpochMetrics.from_record(metrics.as_record()) == metrics
    assert metrics.score == pytest.approx(0.5)
    assert metrics.as_metrics() == {"train/loss": 0.5, "val/loss": 0.6, "val/dice_gland": 0.8,
                                    "val/dice_lesion": 0.2, "val/score": pytest.approx(0.5), "lr": 1e-4}


# --- devices --------------------------------------------------------------------------------------------------

CPU, CUDA0, CUDA1 = torch.device("cpu"), torch.device("cuda", 0), torch.device("cuda", 1)
# (train settings, cuda available, cores, local rank, local processes) -> the Runtime
RUNTIME_CASES = [
    ({}, False, 2, 0, 1, Runtime(CPU, "float32", False, 0, False, False, "gloo")),
    ({}, False, 8, 0, 1, Runtime(CPU, "float32", False, 3, False, False, "gloo")),    # (8 - 2) // 2 workers
    ({}, False, 8, 1, 2, Runtime(CPU, "float32", False, 1, False, False, "gloo")),    # 4 cores each: 1
    ({"processes": 2, "batch_size": 4}, False, 2, 1, 2,
     Runtime(CPU, "float32", False, 0, False, False, "gloo")),                        # no SyncBatchNorm on the CPU
    ({}, True, 2, 0, 1, Runtime(CUDA0, "float16", True, 1, True, False, "nccl")),
    ({}, True, 64, 0, 1, Runtime(CUDA0, "float16", True, 8, True, False, "nccl")),    # at most 8 workers
    ({"processes": 2, "batch_size": 4}, True, 16, 1, 2,
     Runtime(CUDA1, "float16", True, 7, True, True, "nccl")),                         # its own GPU, SyncBatchNorm
    ({"device": "cpu"}, True, 4, 0, 1, Runtime(CPU, "float32", False, 1, False, False, "gloo")),
    ({"mixed_precision": "bfloat16", "channels_last": True, "workers": 3}, False, 2, 0, 1,
     Runtime(CPU, "bfloat16", True, 3, False, False, "gloo")),
    ({"mixed_precision": "float32", "channels_last": False, "workers": 0}, True, 16, 0, 1,
     Runtime(CUDA0, "float32", False, 0, True, False, "nccl")),
    ({"mixed_precision": "bfloat16"}, True, 2, 0, 1, Runtime(CUDA0, "bfloat16", True, 1, True, False, "nccl")),
]


@pytest.mark.parametrize("settings, cuda, cores, local_rank, local_processes, expected", RUNTIME_CASES)
def test_resolve_runtime(settings: dict, cuda: bool, cores: int, local_rank: int, local_processes: int,
                         expected: Runtime) -> None:
    runtime = resolve_runtime(TrainParams(**settings), cuda, cores, local_rank, local_processes)
    assert runtime == expected
    assert runtime.scales_gradients is (expected.precision == "float16")
    assert runtime.non_blocking is expected.pin_memory
    assert runtime.autocast_dtype == {"float32": None, "float16": torch.float16,
                                      "bfloat16": torch.bfloat16}[expected.precision]


def test_cuda_without_a_gpu_is_a_params_error() -> None:
    with pytest.raises(ParamsError, match="train.device is cuda but no CUDA device"):
        resolve_runtime(TrainParams(device="cuda"), False, 2)


@pytest.mark.parametrize("settings, message", [
    ({"mixed_precision": "half"}, "train.mixed_precision"), ({"workers": -1}, "train.workers"),
    ({"workers": "many"}, "train.workers"), ({"channels_last": "yes"}, "train.channels_last"),
    ({"processes": 0}, "train.processes"), ({"processes": 3, "batch_size": 4}, "not divisible"),
    ({"keep": "first"}, "train.keep"), ({"early_stopping_patience": 0}, "early_stopping_patience"),
    ({"device": "tpu"}, "train.device"),
])
def test_run_settings_out_of_range_are_params_errors(settings: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        TrainParams(**settings)


@pytest.mark.parametrize("cores, processes, device, expected", [
    (1, 1, "cpu", 0), (2, 1, "cpu", 0), (3, 1, "cpu", 0), (4, 1, "cpu", 1), (4, 2, "cpu", 0), (16, 1, "cpu", 7),
    (1, 1, "cuda", 0), (2, 1, "cuda", 1), (8, 4, "cuda", 1), (32, 1, "cuda", 8), (2, 4, "cuda", 0),
])
def test_auto_workers(cores: int, processes: int, device: str, expected: int) -> None:
    assert choose_workers("auto", cores, processes, device) == expected
    assert choose_workers(5, cores, processes, device) == 5


# --- distributed ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("environ, expected", [
    ({}, None),
    ({"RANK": "1"}, None),  # no WORLD_SIZE: not torchrun
    ({"WORLD_SIZE": "1"}, World(0, 1, 0, 1)),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, World(1, 2, 1, 2)),
    ({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}, World(3, 4, 1, 2)),  # 2 nodes
])
def test_world_from_environment(environ: dict[str, str], expected: World | None) -> None:
    assert world_from_environment(environ) == expected


@pytest.mark.parametrize("world, main, distributed", [
    (SINGLE, True, False), (World(0, 2, 0, 2), True, True), (World(1, 2, 1, 2), False, True),
    (World(2, 4, 0, 2), False, True),
])
def test_world_roles(world: World, main: bool, distributed: bool) -> None:
    assert (world.is_main, world.distributed) == (main, distributed)


@pytest.mark.parametrize("processes, environ, expected", [
    (1, {}, False), (2, {}, True), (4, {"PATH": "/bin"}, True),
    (2, {"WORLD_SIZE": "2", "RANK": "0"}, False),  # already under torchrun: not again
    (1, {"WORLD_SIZE": "1"}, False),
])
def test_needs_launch(processes: int, environ: dict[str, str], expected: bool) -> None:
    assert needs_launch(processes, environ) is expected


def test_torchrun_arguments() -> None:
    assert torchrun_arguments(2, "pipeline.stages.train", ["--fold", "1"]) == [
        "--standalone", "--nproc_per_node=2", "-m", "pipeline.stages.train", "--fold", "1"]
    assert torchrun_arguments(4, "pipeline.stages.train", []) == [
        "--standalone", "--nproc_per_node=4", "-m", "pipeline.stages.train"]


@pytest.mark.parametrize("cores, processes, expected", [(2, 1, 2), (2, 2, 1), (1, 4, 1), (8, 3, 2), (16, 4, 4)])
def test_threads_per_process(cores: int, processes: int, expected: int) -> None:
    assert threads_per_process(cores, processes) == expected


@pytest.mark.parametrize("n_items, size", [(5, 1), (5, 2), (2, 4), (0, 2), (7, 3)])
def test_shard_gives_every_item_to_exactly_one_process(n_items: int, size: int) -> None:
    shares = [shard(n_items, World(rank, size, rank, size)) for rank in range(size)]
    assert sorted(item for share in shares for item in share) == list(range(n_items))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_shard_takes_every_size_th_item() -> None:
    assert shard(5, World(0, 2, 0, 2)) == [0, 2, 4] and shard(5, World(1, 2, 1, 2)) == [1, 3]


def test_a_world_of_another_size_than_train_processes_is_refused() -> None:
    check_world(World(1, 2, 1, 2), 2)
    check_world(SINGLE, 1)
    with pytest.raises(ParamsError, match="torchrun started 4 training process.*train.processes is 2"):
        check_world(World(0, 4, 0, 4), 2)
    with pytest.raises(ParamsError, match="train.processes=2"):
        check_world(World(0, 2, 0, 2), 1)


COLLECTIVES = """
import json, os, torch
from pipeline.training.distributed import (all_reduce_sum, barrier, broadcast_object, gather_objects, process_group,
                                           shard, world_from_environment)
world = world_from_environment(os.environ)
with process_group(world, "gloo", torch.device("cpu")):
    result = {"rank": world.rank,
              "broadcast": broadcast_object({"from": world.rank, "tensor": torch.arange(3) * (world.rank + 1)}, world),
              "gathered": gather_objects(f"rank {world.rank}", world),
              "summed": all_reduce_sum(torch.tensor([1.0, world.rank]), world).tolist(),
              "shard": shard(5, world)}
    result["broadcast"]["tensor"] = result["broadcast"]["tensor"].tolist()
    barrier(world)
with open(f"rank{world.rank}.json", "w") as file:
    json.dump(result, file)
"""


def test_collectives_of_two_processes_under_torchrun(tmp_path: Path) -> None:
    (tmp_path / "collectives.py").write_text(COLLECTIVES)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "collectives.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
                            env=child_environment({"PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1",
                                                   "TMPDIR": str(tmp_path)}))  # torchrun's agent leaves a folder
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == {
            "rank": rank, "broadcast": {"from": 0, "tensor": [0, 1, 2]}, "gathered": ["rank 0", "rank 1"],
            "summed": [2.0, 1.0], "shard": [[0, 2, 4], [1, 3]][rank]}


def test_one_process_has_nothing_to_exchange() -> None:
    value = {"a": torch.ones(2)}
    assert broadcast_object(value, SINGLE) is value and gather_objects(3, SINGLE) == [3]
    tensor = torch.tensor([1.0, 2.0])
    assert all_reduce_sum(tensor, SINGLE) is tensor and tensor.tolist() == [1.0, 2.0]
    barrier(SINGLE)


ORPHAN = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", '''
import sys, time
from pipeline.training.distributed import exit_with_parent
print("set" if exit_with_parent() else "unavailable", flush=True)
time.sleep(120)
'''], start_new_session=True)  # as torchrun starts its processes: a group kill does not reach them
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_a_process_in_its_own_session_dies_with_its_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN], stdout=subprocess.PIPE, text=True,
                              env=child_environment({"PYTHONPATH": str(PROJECT_ROOT)}), start_new_session=True)
    child = None
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        assert parent.stdout.readline().strip() == "set"  # the child's line, on the pipe it inherited
        os.killpg(parent.pid, signal.SIGKILL)  # the parent's group: not the child's own session
        parent.wait(timeout=30)
        _, alive = psutil.wait_procs([child], timeout=30)
        assert all(process.status() == psutil.STATUS_ZOMBIE for process in alive), "the child outlived its parent"
    finally:
        for process in (parent, child):
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess, AttributeError):
                if isinstance(process, psutil.Process):
                    process.kill()
                elif process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)


# --- resume ---------------------------------------------------------------------------------------------------

def test_resume_folder_is_named_after_the_checkpoint(tmp_path: Path) -> None:
    assert resume_folder(Path("models/checkpoint.pt")) == RESUME_ROOT / "models-checkpoint"
    assert resume_folder(Path("models/folds/2/checkpoint.pt"), tmp_path) == tmp_path / "models-folds-2-checkpoint"


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    """What a fingerprint is taken of: settings, two input files, two arrays, two code files (relative to a root)."""
    (tmp_path / "split.json").write_text('{"frames": {"train": ["a"], "val": ["b"]}}')
    (tmp_path / "manifest.csv").write_text("frame_id\na\nb\n")
    (tmp_path / "code" / "pipeline").mkdir(parents=True)
    (tmp_path / "code" / "pipeline" / "loop.py").write_text("EPOCHS = 1\n")
    (tmp_path / "code" / "pipeline" / "model.py").write_text("WIDTH = 2\n")
    return {"settings": {"train": {"lr": 1e-4, "epochs": 3}, "preprocess.size": 64, "fold": None},
            "files": [tmp_path / "split.json", tmp_path / "manifest.csv"],
            "arrays": [np.arange(16, dtype=np.uint8).reshape(4, 4), np.zeros((4, 4), np.uint8)],
            "code": [Path("pipeline/loop.py"), Path("pipeline/model.py")], "code_root": tmp_path / "code"}


def _changed(inputs: dict, change: str, tmp_path: Path) -> dict:
    """``inputs`` with one thing changed."""
    changed = {**inputs, "settings": {**inputs["settings"], "train": dict(inputs["settings"]["train"])},
               "arrays": [array.copy() for array in inputs["arrays"]]}
    if change == "setting":
        changed["settings"]["train"]["lr"] = 3e-4
    elif change == "fold":
        changed["settings"]["fold"] = 0
    elif change == "file":
        (tmp_path / "manifest.csv").write_text("frame_id\na\nc\n")
    elif change == "array value":
        changed["arrays"][0][2, 3] += 1
    elif change == "array shape":
        changed["arrays"][0] = changed["arrays"][0].reshape(2, 8)
    elif change == "array dtype":
        changed["arrays"][1] = changed["arrays"][1].astype(np.int8)
    elif change == "array order":
        changed["arrays"] = changed["arrays"][::-1]
    elif change == "code":
        (tmp_path / "code" / "pipeline" / "model.py").write_text("WIDTH = 3\n")
    elif change == "code name":
        (tmp_path / "code" / "pipeline" / "model.py").rename(tmp_path / "code" / "pipeline" / "net.py")
        changed["code"] = [Path("pipeline/loop.py"), Path("pipeline/net.py")]
    return changed


@pytest.mark.parametrize("change", ["setting", "fold", "file", "array value", "array shape", "array dtype",
                                    "array order", "code", "code name"])
def test_fingerprint_changes_with_each_input(inputs: dict, change: str, tmp_path: Path) -> None:
    before = fingerprint(**inputs)
    assert len(before) == 64 and fingerprint(**inputs) == before
    assert fingerprint(**_changed(inputs, change, tmp_path)) != before


def test_fingerprint_ignores_key_order_and_the_working_directory(inputs: dict, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    before = fingerprint(**inputs)
    reordered = {key: inputs["settings"][key] for key in reversed(list(inputs["settings"]))}
    assert fingerprint(**{**inputs, "settings": reordered}) == before
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # code files are read from code_root, not from the working directory
    assert fingerprint(**inputs) == before


def test_fingerprint_of_a_moved_project_is_the_same(inputs: dict, tmp_path: Path) -> None:
    before = fingerprint(**inputs)
    moved = tmp_path / "moved"
    (tmp_path / "code").rename(moved)
    assert fingerprint(**{**inputs, "code_root": moved}) == before  # code is named relative to its root


@pytest.fixture
def spec(tmp_path: Path) -> ResumeSpec:
    return ResumeSpec(resume_folder(Path("models/checkpoint.pt"), tmp_path / RESUME_ROOT), "a" * 64)


def test_a_saved_state_loads_back(spec: ResumeSpec) -> None:
    assert load_state(spec) is None  # nothing saved yet
    weights = {"conv.weight": torch.randn(2, 3)}
    save_state(spec, {"model": weights, "progress": {"epoch": 2}, "live": {"metrics.json": "{}"}})
    assert spec.path.is_file() and [path.name for path in spec.folder.iterdir()] == ["state.pt"]
    state = load_state(spec)
    assert state is not None and state["fingerprint"] == spec.fingerprint and state["progress"] == {"epoch": 2}
    assert torch.equal(state["model"]["conv.weight"], weights["conv.weight"])


def test_a_state_for_other_params_is_discarded_with_a_warning(spec: ResumeSpec,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    save_state(spec, {"progress": {"epoch": 2}})
    other = dataclasses.replace(spec, fingerprint="b" * 64)
    with caplog.at_level(logging.WARNING, logger="pipeline.training.resume"):
        assert load_state(other) is None
    assert [record.getMessage() for record in caplog.records] == [
        (f"{spec.path}: resume state discarded, training from the start: it was written for other params, data "
         "or code")]
    assert not spec.folder.exists() and not spec.folder.parent.exists()  # the empty root goes too


@pytest.mark.parametrize("content", [b"", b"not a torch file", b"PK\x03\x04 truncated zip"])
def test_an_unreadable_state_is_discarded_with_a_warning(spec: ResumeSpec, content: bytes,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    spec.folder.mkdir(parents=True)
    spec.path.write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="pipeline.training.resume"):
        assert load_state(spec) is None
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith(f"{spec.path}: unreadable resume state discarded")
    assert not spec.folder.exists()


def test_a_state_that_is_not_a_dict_is_discarded(spec: ResumeSpec, caplog: pytest.LogCaptureFixture) -> None:
    spec.folder.mkdir(parents=True)
    torch.save(torch.zeros(3), spec.path)
    with caplog.at_level(logging.WARNING, logger="pipeline.training.resume"):
        assert load_state(spec) is None
    assert "other params" in caplog.text and not spec.folder.exists()


def test_discard_keeps_other_runs_states(spec: ResumeSpec) -> None:
    save_state(spec, {"progress": {}})
    other = ResumeSpec(spec.folder.parent / "models-folds-0-checkpoint", "c" * 64)
    save_state(other, {"progress": {}})
    discard(spec)
    assert not spec.folder.exists() and other.path.is_file()
    discard(other)
    assert not spec.folder.parent.exists()
    discard(other)  # already gone: nothing to do


def _draws() -> tuple:
    return (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.randn(),
            torch.rand(3).tolist(), torch.randint(0, 1000, (2,)).tolist())


def test_rng_states_round_trip_through_a_saved_state(spec: ResumeSpec) -> None:
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached Gaussian in Python's generator
    np.random.randn()   # and one in NumPy's
    save_state(spec, {"rng": [rng_states()]})
    expected = _draws()
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    assert _draws() != expected
    restore_rng_states(load_state(spec)["rng"][0])  # through torch.load(weights_only=True)
    assert _draws() == expected


def test_dvclive_folder_round_trip(tmp_path: Path) -> None:
    live = tmp_path / "dvclive"
    (live / "plots" / "metrics" / "train").mkdir(parents=True)
    (live / "metrics.json").write_text('{"step": 1}')
    (live / "plots" / "metrics" / "train" / "loss.tsv").write_text("step\tloss\n0\t1.0\n1\t0.5\n")
    files = read_folder(live)
    assert files == {"metrics.json": '{"step": 1}', "plots/metrics/train/loss.tsv": "step\tloss\n0\t1.0\n1\t0.5\n"}
    (live / "plots" / "metrics" / "lr.tsv").write_text("step\tlr\n0\t1\n1\t1\n2\t1\n")  # written after the save
    write_folder(live, files)
    assert read_folder(live) == files  # exactly the saved files, the later one gone
    write_folder(tmp_path / "new" / "dvclive", files)
    assert read_folder(tmp_path / "new" / "dvclive") == files
