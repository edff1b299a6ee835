"""Training that survives interruptions and scales out, with the real train stage on a tiny project.

Tiny on purpose (64 px frames, FPN/ResNet-18 from scratch, 4 training and 2 validation frames,
batch 2, 2 epochs, 4 where early stopping ends them; about 7 s a run, one thread per process):
every run is a real ``python -m pipeline.stages.train`` (or the real ``dvc repro``) in a
temporary folder, killed with SIGKILL where the test says so.

- kill and resume: ``dvc repro`` SIGKILLed in the second epoch, then run again, ends with the
  DVCLive metrics and checkpoint weights of the uninterrupted run, to 1e-6;
- a state written for other params (another ``train.lr``) is discarded with a warning;
- early stopping with patience 1 where the score does not improve (``train.lr: 0``: the
  weights never change; validation frames holding neither class: the score is 1.0 while
  nothing is predicted there, and a predicted pixel can only lower it), and which epoch
  ``train.keep: best`` and ``last`` put in the checkpoint;
- ``train.processes: 2`` (torchrun, DistributedDataParallel over gloo on the CPU): one
  checkpoint and one DVCLive folder; killing the run's process group kills torchrun's
  processes too, and the re-run resumes to the uninterrupted 2-process result; and with
  the batch-coupled layers taken out (BatchNorm, Dropout) and a per-pixel loss, the step
  losses of 2 processes equal those of 1 process on the same global batch; and a plane head
  trained on windows (its second, whole-frame encoder pass) runs under DistributedDataParallel.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import psutil
import pytest
import torch
import yaml
from torch import nn

from pipeline.imaging.masks import pack_masks
from pipeline.layout import CHECKPOINT_FILE, DVCLIVE_DIR, IMAGES, MASKS, PROCESSED_DIR, PROCESSED_MANIFEST, SPLIT_FILE
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.resume import RESUME_ROOT, STATE_FILE, resume_folder
from tests.conftest import DVC_CONFIG, PROJECT_ROOT, child_environment, project_files, run_checked, stages_run

SIZE = 64  # at 32 px the encoder's last stage is 1x1: BatchNorm refuses 1 frame per process in training
CLASSES = ("gland", "lesion")
STATE = resume_folder(CHECKPOINT_FILE) / STATE_FILE  # .trus-resume/models-checkpoint/state.pt
VENV_BIN = Path(sys.executable).parent  # the venv running the tests: its python, torchrun and dvc
TIMEOUT = 600
# One intra-op thread per training process (the stage's relaunch gives 2 processes on 2 cores 1 each, and the
# same arithmetic in 1 process helps the step-by-step comparison). Tests share the cores with each other: two
# OpenMP threads waiting on each other there made a run 5 times slower (36 s instead of 7 s).
THREADS = "1"
# resumed vs uninterrupted (max_difference), on the CPU, with the same threads per process: bit-identical (measured:
# 0.0 in 3 of 3 kill-and-resume runs). With another thread count the reductions add in another order: a resumed epoch
# at 2 threads after an uninterrupted one at 1 differed by 1.08e-6, so every run of a comparison gets THREADS.
TOLERANCE = 1e-6


def tiny_frame(index: int, empty: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A (SIZE, SIZE) uint8 frame with a bright disk (gland), a dark spot in it on odd frames (lesion),
    and its bitmask; ``empty``: the same noise without gland or lesion."""
    rng = np.random.default_rng(index)
    centre = (int(rng.integers(24, 40)), int(rng.integers(24, 40)))
    gland, lesion = np.zeros((SIZE, SIZE), np.uint8), np.zeros((SIZE, SIZE), np.uint8)
    if not empty:
        cv2.circle(gland, centre, int(rng.integers(12, 20)), 1, -1)
        if index % 2:
            cv2.circle(lesion, centre, 6, 1, -1)
    image = 40 + 160 * gland - 80 * lesion + rng.integers(0, 20, (SIZE, SIZE))
    return image.astype(np.uint8), pack_masks(np.stack([gland, lesion]).astype(bool))


def write_params(root: Path, **train: object) -> None:
    """The project's params.yaml at 64 px, FPN/ResNet-18 from scratch, 2 epochs of batch 2, with ``train`` changes."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["preprocess"]["size"] = SIZE
    params["model"].update(arch="FPN", encoder="resnet18", encoder_weights=None, weights_path=None)
    params["train"].update({"epochs": 2, "batch_size": 2, **train})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def write_project(root: Path, empty_validation: bool = False, **train: object) -> Path:
    """A tiny project in ``root``: 6 processed frames of 3 patients (4 training, 2 validation), split, params."""
    for folder in (IMAGES, MASKS):
        (root / PROCESSED_DIR / folder).mkdir(parents=True)
    ids = [f"p{index // 2}_f{index}" for index in range(6)]
    for index, frame_id in enumerate(ids):
        image, mask = tiny_frame(index, empty=empty_validation and index >= 4)
        cv2.imwrite(str(root / PROCESSED_DIR / IMAGES / f"{frame_id}.png"), image)
        cv2.imwrite(str(root / PROCESSED_DIR / MASKS / f"{frame_id}.png"), mask)
    pd.DataFrame({"frame_id": ids, "patient": [frame_id.split("_")[0] for frame_id in ids]}).to_csv(
        root / PROCESSED_DIR / PROCESSED_MANIFEST, index=False)
    (root / SPLIT_FILE).write_text(json.dumps({"frames": {"train": ids[:4], "val": ids[4:], "test": []}}))
    write_params(root, **train)
    return root


def environment(temporary: Path | None = None) -> dict[str, str]:
    """The stage's environment: the project's code importable from anywhere, the venv first on PATH, lines
    unbuffered, one thread per process (:data:`THREADS`), and ``temporary`` (made if missing) as its temporary
    folder if given."""
    overrides = {"PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": THREADS,
                 "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    if temporary is not None:
        temporary.mkdir(parents=True, exist_ok=True)
        overrides["TMPDIR"] = str(temporary)
    return child_environment(overrides)


STAGE = [sys.executable, "-m", "pipeline.stages.train"]


def run(command: list[str], root: Path, temporary: Path | None = None) -> subprocess.CompletedProcess:
    """``command`` in ``root`` to its end, with ``temporary`` as its temporary folder if given; fails the test, with
    the output's tail, unless it succeeds."""
    result = subprocess.run(command, cwd=root, env=environment(temporary), capture_output=True, text=True,
                            timeout=TIMEOUT, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def kill_in_second_epoch(command: list[str], root: Path) -> tuple[str, list[psutil.Process]]:
    """Starts ``command`` in ``root`` in a process group of its own and SIGKILLs the group once the first epoch's
    resume state is written (the second epoch has begun).

    Returns:
        The run's output, and its processes that outlived the kill (none but zombies expected).
    """
    log = root / "killed.log"
    with log.open("w") as output:
        # its temporary folder beside the project: a killed torchrun leaves its agent's log folder there
        process = subprocess.Popen(command, cwd=root, env=environment(root.with_name(f"{root.name}-tmp")),
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (root / STATE).is_file():  # written via a temporary name: complete once it is there
            assert process.poll() is None, f"the run ended before its first epoch's state:\n{log.read_text()}"
            assert time.monotonic() < deadline, "no resume state in time"
            time.sleep(0.05)
        time.sleep(0.1)
        tree = psutil.Process(process.pid).children(recursive=True)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    output = log.read_text()
    _, alive = psutil.wait_procs(tree, timeout=5)  # SIGKILL or the parent-death signal: at once
    survivors = [survivor for survivor in alive if _status(survivor) not in (None, psutil.STATUS_ZOMBIE)]
    for survivor in survivors:  # no orphan left training, whatever the test says about them
        survivor.kill()
    assert log.read_text() == output, f"a process of the killed run went on:\n{log.read_text()[len(output):]}"
    return output, survivors


def _status(process: psutil.Process) -> str | None:
    try:
        return process.status()
    except psutil.NoSuchProcess:
        return None


def assert_killed_mid_second_epoch(root: Path, output: str) -> None:
    """The killed run had finished epoch 1 and not epoch 2: its state says 1 epoch, no checkpoint was written."""
    assert "epoch 1: train loss" in output and "epoch 2: train loss" not in output, output
    state = torch.load(root / STATE, map_location="cpu", weights_only=True)
    assert state["progress"]["epoch"] == 1 and len(state["history"]) == 1
    assert not (root / CHECKPOINT_FILE).exists()


def dvclive_values(root: Path) -> dict[str, list[tuple[int, float]]]:
    """Every DVCLive metric of a run: ``metrics.json`` keys and each plot's (step, value) rows."""
    live = root / DVCLIVE_DIR
    values: dict[str, list[tuple[int, float]]] = {}

    def flatten(prefix: str, node: object) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                flatten(f"{prefix}/{key}" if prefix else key, child)
        else:
            values[f"metrics.json:{prefix}"] = [(0, float(node))]

    flatten("", json.loads((live / "metrics.json").read_text()))
    for table in sorted((live / "plots" / "metrics").rglob("*.tsv")):
        with table.open(newline="") as file:
            rows = list(csv.DictReader(file, delimiter="\t"))
        name = table.relative_to(live).with_suffix("").as_posix()
        values[name] = [(int(row["step"]), float(row[table.stem])) for row in rows]
    return values


def checkpoint_weights(root: Path) -> tuple[dict[str, torch.Tensor], dict]:
    payload = torch.load(root / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    return payload["state_dict"], payload


def max_difference(first: Path, second: Path) -> float:
    """The largest difference between two runs' DVCLive values and checkpoint weights (the same names asserted):
    absolute for values up to 1 in magnitude, relative above (float32 keeps 7 digits of a running variance of 40)."""
    live_a, live_b = dvclive_values(first), dvclive_values(second)
    assert live_a.keys() == live_b.keys()
    differences = [0.0]
    for name, rows in live_a.items():
        assert [step for step, _ in rows] == [step for step, _ in live_b[name]], name
        differences += [abs(a - b) / max(1.0, abs(a)) for (_, a), (_, b) in zip(rows, live_b[name])]
    (weights_a, payload_a), (weights_b, payload_b) = checkpoint_weights(first), checkpoint_weights(second)
    assert weights_a.keys() == weights_b.keys() and payload_a["epoch"] == payload_b["epoch"]
    differences.append(abs(payload_a["val_dice"] - payload_b["val_dice"]))
    for name, tensor in weights_a.items():
        if tensor.numel():
            a, b = tensor.double(), weights_b[name].double()
            differences.append(float(((a - b).abs() / a.abs().clamp(min=1.0)).max()))
    return max(differences)


def epoch_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("epoch ")]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny project trained for 2 epochs in one go."""
    root = write_project(tmp_path_factory.mktemp("uninterrupted"))
    result = run(STAGE, root)
    assert [line.split(":")[0] for line in epoch_lines(result.stdout)] == ["epoch 1", "epoch 2"]
    return root


def write_dvc_repository(root: Path) -> Path:
    """The tiny project as a git + DVC repository whose dvc.yaml is the project's train stage, unchanged, with the
    project's ``.dvc/config``."""
    write_project(root)
    for name in project_files():
        if name.startswith("pipeline/") or name in (".gitignore", ".dvcignore"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT_ROOT / name, root / name)
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"train": stages["train"]}}, sort_keys=False))
    run_checked(["git", "init", "-q"], root, VENV_BIN)
    run_checked(["dvc", "init", "-q"], root, VENV_BIN, DVC_NO_ANALYTICS="1")  # no usage report of `dvc init` itself
    # from here on, the project's DVC settings (no usage reports, no update checks), not `dvc init`'s defaults
    shutil.copy2(PROJECT_ROOT / DVC_CONFIG, root / DVC_CONFIG)
    for command in (["git", "add", "."], ["git", "commit", "-qm", "tiny project"]):
        run_checked(command, root, VENV_BIN)
    return root


def test_killed_dvc_repro_resumes_from_the_last_complete_epoch(uninterrupted: Path, tmp_path: Path) -> None:
    root = write_dvc_repository(tmp_path / "repo")
    output, survivors = kill_in_second_epoch(["dvc", "repro"], root)  # environment(): THREADS, as `uninterrupted`
    assert survivors == []
    assert_killed_mid_second_epoch(root, output)
    resumed = run_checked(["dvc", "repro"], root, VENV_BIN, TIMEOUT, OMP_NUM_THREADS=THREADS).stdout
    assert stages_run(resumed) == ["train"]
    assert f"resuming after epoch 1 of 2 from {STATE}" in resumed
    assert [line.split(":")[0] for line in epoch_lines(resumed)] == ["epoch 2"]
    assert max_difference(uninterrupted, root) <= TOLERANCE
    assert not (root / RESUME_ROOT).exists()  # the state is gone once the run is complete
    assert stages_run(run_checked(["dvc", "repro"], root, VENV_BIN).stdout) == []  # and DVC sees it done


@pytest.fixture(scope="module")
def stale_state_then_early_stop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A run with lr 1e-4 killed after its first epoch, then the stage again with lr 0 (the weights never change),
    patience 1 and ``keep: last`` on validation frames without gland or lesion: (project, the second run)."""
    root = write_project(tmp_path_factory.mktemp("stale"), empty_validation=True, epochs=4)
    output, survivors = kill_in_second_epoch(STAGE, root)
    assert survivors == [] and (root / STATE).is_file(), output
    write_params(root, epochs=4, lr=0.0, early_stopping_patience=1, keep="last")
    return root, run(STAGE, root)


def test_a_state_for_other_params_is_discarded(stale_state_then_early_stop: tuple[Path, subprocess.CompletedProcess]
                                               ) -> None:
    root, result = stale_state_then_early_stop
    assert result.stderr.splitlines() == [
        (f"warning: {STATE}: resume state discarded, training from the start: it was written for other params, "
         "data or code")]
    assert "resuming" not in result.stdout
    assert epoch_lines(result.stdout)[0].startswith("epoch 1: train loss")
    assert [step for step, _ in dvclive_values(root)["plots/metrics/lr"]] == [0, 1]  # this run's epochs only
    assert {value for _, value in dvclive_values(root)["plots/metrics/lr"]} == {0.0}
    assert not (root / RESUME_ROOT).exists()


def test_early_stopping_when_the_score_cannot_improve(stale_state_then_early_stop: tuple[Path,
                                                                                       subprocess.CompletedProcess]
                                                      ) -> None:
    root, result = stale_state_then_early_stop
    scores = [value for _, value in dvclive_values(root)["plots/metrics/val/score"]]
    assert len(scores) == 2 and scores[1] <= scores[0]  # measured: [1.0, 1.0], nothing predicted on either frame
    assert [line.split(":")[0] for line in epoch_lines(result.stdout)] == ["epoch 1", "epoch 2"]
    assert (f"early stop after epoch 2: no better val score in 1 epoch(s) (best {scores[0]:.3f} at epoch 1)"
            in result.stdout)
    assert "kept epoch 2 (early stop of 4) (keep: last)" in result.stdout
    _, info = load_checkpoint(root / CHECKPOINT_FILE)
    assert info["epoch"] == 2 and info["val_dice"] == scores[1]


def test_keep_best_keeps_the_first_best_epoch(stale_state_then_early_stop: tuple[Path, subprocess.CompletedProcess],
                                              tmp_path: Path) -> None:
    last_root, _ = stale_state_then_early_stop
    root = shutil.copytree(last_root / "artifacts", tmp_path / "best" / "artifacts").parent
    write_params(root, epochs=4, lr=0.0, early_stopping_patience=1, keep="best")
    result = run(STAGE, root)
    assert "early stop after epoch 2" in result.stdout
    assert "kept epoch 1 (early stop of 4) (keep: best)" in result.stdout
    best, best_payload = checkpoint_weights(root)
    last, last_payload = checkpoint_weights(last_root)
    assert (best_payload["epoch"], last_payload["epoch"]) == (1, 2)
    # lr 0: the same parameters; BatchNorm's running statistics went on: the copy made after epoch 1 (2 steps)
    counters = [name for name in best if name.endswith("num_batches_tracked")]
    assert counters and all(int(best[name]) == 2 and int(last[name]) == 4 for name in counters)
    assert all(torch.equal(best[name], last[name]) for name in best if "running" not in name and name not in counters)
    assert not all(torch.equal(best[name], last[name]) for name in best if "running_mean" in name)


# --- several processes ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The tiny project trained for 2 epochs with ``train.processes: 2`` (the stage starts itself under torchrun),
    with a temporary folder of its own, ``<root>/../ddp-tmp``."""
    root = write_project(tmp_path_factory.mktemp("ddp"), epochs=2, processes=2)
    return root, run(STAGE, root, root.parent / "ddp-tmp")


def test_two_processes_leave_nothing_in_the_temporary_folder(
        two_processes: tuple[Path, subprocess.CompletedProcess]) -> None:
    root, _ = two_processes
    assert sorted(path.name for path in (root.parent / "ddp-tmp").iterdir()) == []  # torchrun's own: torchelastic_*


def project_listing(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts and path.name != "killed.log")


def test_two_processes_write_one_checkpoint_and_one_dvclive_folder(
        two_processes: tuple[Path, subprocess.CompletedProcess]) -> None:
    root, result = two_processes
    assert [line.split(":")[0] for line in epoch_lines(result.stdout)] == ["epoch 1", "epoch 2"]  # rank 0 only
    assert result.stdout.count("train (the split's train/val): 4 training/2 validation frames") == 1
    listing = project_listing(root)
    assert [name for name in listing if not name.startswith(("artifacts/", "params.yaml"))] == [
        "dvclive/metrics.json", "dvclive/plots/metrics/lr.tsv", "dvclive/plots/metrics/train/loss.tsv",
        "dvclive/plots/metrics/val/dice_gland.tsv", "dvclive/plots/metrics/val/dice_lesion.tsv",
        "dvclive/plots/metrics/val/loss.tsv", "dvclive/plots/metrics/val/score.tsv", "models/checkpoint.pt"]
    _, info = load_checkpoint(root / CHECKPOINT_FILE)
    assert info["epoch"] == 2 and info["classes"] == CLASSES
    assert [step for step, _ in dvclive_values(root)["plots/metrics/train/loss"]] == [0, 1]


@pytest.mark.parametrize(("classifier", "plane_frames", "head"), [("frame", 0, "plane_classifier"),
                                                                  ("encoder", 1, "classification_head")])
def test_two_processes_train_a_plane_head_on_windows_from_the_whole_frames(tmp_path: Path, classifier: str,
                                                                          plane_frames: int, head: str) -> None:
    """DistributedDataParallel around :class:`WholeFramePlane`: masks from 32 px windows of the 64 px frames, the
    plane from the whole frames (the frame classifier: all of them; smp's head on the encoder: the first of each
    process's batch of 2, through a second encoder pass)."""
    root = write_project(tmp_path, epochs=1, processes=2, batch_size=4,
                         patch={"size": 32, "foreground": 0.5, "plane_frames": plane_frames})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["model"]["plane_classifier"] = classifier
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    manifest = pd.read_csv(root / PROCESSED_DIR / PROCESSED_MANIFEST, dtype=str)
    manifest["plane"] = ["transverse", "sagittal"] * 3
    manifest.to_csv(root / PROCESSED_DIR / PROCESSED_MANIFEST, index=False)
    result = run(STAGE, root)
    assert "FPN/resnet18 with the plane head" in result.stdout and len(epoch_lines(result.stdout)) == 1
    model, info = load_checkpoint(root / CHECKPOINT_FILE)
    assert info["model"].plane_head is True and info["epoch"] == 1
    assert isinstance(getattr(model, head), nn.Module)  # what the export's `plane` output is made of
    assert info["model"].plane_classifier == classifier
    assert [step for step, _ in dvclive_values(root)["plots/metrics/val/plane_accuracy"]] == [0]


def test_killing_two_processes_kills_them_all_and_the_rerun_resumes(
        two_processes: tuple[Path, subprocess.CompletedProcess], tmp_path: Path) -> None:
    reference, _ = two_processes
    root = write_project(tmp_path / "project", epochs=2, processes=2)
    output, survivors = kill_in_second_epoch(STAGE, root)
    # torchrun starts each process in a session of its own: they must not train on as orphans
    assert survivors == [], f"{len(survivors)} training process(es) outlived the kill"
    assert_killed_mid_second_epoch(root, output)
    result = run(STAGE, root)
    assert f"resuming after epoch 1 of 2 from {STATE}" in result.stdout
    assert [line.split(":")[0] for line in epoch_lines(result.stdout)] == ["epoch 2"]
    assert max_difference(reference, root) <= TOLERANCE
    assert project_listing(root) == project_listing(reference)


STEP_RECORDER = '''
"""The train stage without BatchNorm and Dropout in the network; rank 0 writes each epoch's step losses."""
import json
import os
from pathlib import Path

from torch import nn

import pipeline.stages.train as stage
import pipeline.training.parts as parts
from pipeline.stages.runner import run_stage

COUPLING = (nn.BatchNorm2d, nn.Dropout, nn.Dropout2d)  # what makes a frame's output depend on the others'


def uncoupled(module):
    for name, child in module.named_children():
        setattr(module, name, nn.Identity()) if isinstance(child, COUPLING) else uncoupled(child)
    return module


build_model, train_model = parts.build_model, stage.train_model


def build_uncoupled(*args):
    network = uncoupled(build_model(*args))
    assert not any(isinstance(module, (nn.BatchNorm2d, nn.SyncBatchNorm, *COUPLING)) for module in network.modules())
    return network


def recording(*args, **kwargs):
    history = train_model(*args, **kwargs)
    if os.environ.get("RANK", "0") == "0":
        Path("steps.json").write_text(json.dumps([{"steps": list(metrics.step_losses), "score": metrics.score,
                                                   "val_loss": metrics.val_loss} for metrics in history]))
    return history


parts.build_model, stage.train_model = build_uncoupled, recording
run_stage(stage.main)
'''


def test_two_processes_follow_one_process_step_by_step(tmp_path: Path) -> None:
    """DistributedDataParallel on 2 processes, each with half of every batch, trains as 1 process on the whole batch.

    Only where a frame's output does not depend on the other frames of its batch: BatchNorm
    normalises each process's frames with their own statistics (on the CPU there is no
    SyncBatchNorm) and Dropout draws its masks per process, and the soft Dice loss is a ratio
    over the batch, so the recorder takes BatchNorm and Dropout out of the network and the loss
    is the per-pixel BCE (the mean of two half-batch means is the whole batch's mean). Then the
    first step is the same computation, and every later step applies the average of the two
    processes' gradients, which is the whole batch's gradient summed in another order: float32
    rounding. Adam moves each weight by about lr whatever the size of its gradient, so a
    gradient at rounding level can take a weight up to 2 lr further per step, hence rtol 1e-3 on
    the later losses and 2 lr x steps on the weights (measured: losses 6e-7 relative apart,
    weights 1.2e-5).
    """
    recorder = tmp_path / "record_steps.py"
    recorder.write_text(STEP_RECORDER)
    loss = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["train"]["loss"]
    loss = {**loss, "dice": {**loss["dice"], "weight": 0.0}, "bce": {**loss["bce"], "weight": 1.0}}
    records = {}
    for processes in (1, 2):
        root = write_project(tmp_path / f"{processes}", epochs=2, processes=processes, loss=loss)
        launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        result = run([sys.executable, *launcher, str(recorder)], root, tmp_path / "tmp")
        assert [line.split(":")[0] for line in epoch_lines(result.stdout)] == ["epoch 1", "epoch 2"]
        records[processes] = json.loads((root / "steps.json").read_text())
    one, two = records[1], records[2]
    assert [len(epoch["steps"]) for epoch in one] == [len(epoch["steps"]) for epoch in two] == [2, 2]
    assert two[0]["steps"][0] == pytest.approx(one[0]["steps"][0], rel=1e-5)  # before any update
    np.testing.assert_allclose([epoch["steps"] for epoch in two], [epoch["steps"] for epoch in one], rtol=1e-3)
    np.testing.assert_allclose([epoch["val_loss"] for epoch in two], [epoch["val_loss"] for epoch in one], rtol=1e-3)
    weights = [checkpoint_weights(tmp_path / f"{processes}")[0] for processes in (1, 2)]
    lr, steps = yaml.safe_load((tmp_path / "1" / "params.yaml").read_text())["train"]["lr"], 4
    assert max(float((weights[0][name] - weights[1][name]).abs().max()) for name in weights[0]) <= 2 * lr * steps
