"""Seconds per frame, end to end, of PyTorch fp32, ONNX Runtime fp32 and ONNX Runtime INT8; the app's start-up and memory.

    python benchmarks/inference.py [--settings product demo] [--frames 6] [--repeats 3]
                                   [--calibration-frames 8] [--calibration minmax] [--weight-bits 7]
                                   [--work DIR] [--app]

For each setting (``product``: FPN / ResNet-152 at 768 px, params.yaml's defaults; ``demo``:
the Makefile's U-Net / ResNet-18 at 256 px) it builds the network with random weights (seed 0;
timing does not depend on them), exports it with the pipeline's own export
(:func:`pipeline.training.onnx_export.export_onnx`) and quantises it as the export stage does
(:func:`pipeline.training.quantize.quantize_int8`, calibrated on other frames than the timed
ones). The frames are synthetic 1280x872 TRUS frames written as PNG files. Each path is timed
end to end per frame: decode the file, the model's preprocessing (crop, resize, diffusion
filter), the network, the probabilities mapped back onto the frame and thresholded:

- ``torch fp32``: the trained network in PyTorch eager mode (``torch.no_grad``, the CPU);
- ``onnxruntime fp32`` and ``onnxruntime int8``: :class:`pipeline.inference.predictor.Segmenter`
  (the app's and ``trus segment``'s runtime) on the float and the quantised file.

Each path runs ``--repeats`` passes over the frames after one warm-up frame; the median
seconds per frame over the passes is printed, with the ratios. It never fails on speed.
With ``--sweep`` it times ONNX Runtime's options on the product model's network alone (graph
optimisation level x intra-op threads, session start with and without the optimised-graph
cache), the measurements :func:`pipeline.inference.predictor.session_options` was chosen by.
With ``--app`` it also starts the real app (``python -m app FRAME --model M --screenshot``,
offscreen) on the product model, cold and with ONNX Runtime's optimised-graph cache warm,
fp32 and INT8, and prints the time to the first segmented frame and the peak memory (RSS).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime as ort
import torch

from bench_frames import FRAME_HEIGHT, FRAME_WIDTH, write_grey_frames
from pipeline.config import ModelParams, Params
from pipeline.imaging.frames import read_frame
from pipeline.int8_spec import Int8Params
from pipeline.imaging.geometry import probabilities_to_original_frame
from pipeline.imaging.preprocessing import network_input, preprocess_frame
from pipeline.imaging.spec import PreprocessSpec
from pipeline.inference.contract import ModelContract
from pipeline.inference.predictor import Segmenter, session_options
from pipeline.inference.runtime import cpu_flags, file_sha256, int8_kernels, physical_cores, weight_bits
from pipeline.training.model import build_model
from pipeline.training.onnx_export import export_onnx
from pipeline.training.int8_export import write_contract
from pipeline.training.quantize import quantize_int8

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Setting:
    """A network and its input size."""

    name: str
    model: ModelParams
    preprocess: PreprocessSpec


def settings() -> dict[str, Setting]:
    """``product`` (params.yaml's defaults) and ``demo`` (the Makefile's ``DEMO_PARAMS``), random weights."""
    defaults = Params()
    product = replace(defaults.model, encoder_weights=None, plane_head=False)
    demo = replace(product, arch="Unet", encoder="resnet18")
    return {"product": Setting("product (FPN / ResNet-152, 768 px)", product, defaults.preprocess),
            "demo": Setting("demo (U-Net / ResNet-18, 256 px)", demo, replace(defaults.preprocess, size=256))}


def int8_bits_of(path: Path) -> int | None:
    """The weight bits an INT8 model file was made with (None: no such file)."""
    if not path.is_file():
        return None
    import onnx

    from pipeline.inference.contract import CONTRACT_KEY

    props = {prop.key: prop.value for prop in onnx.load(str(path), load_external_data=False).metadata_props}
    return weight_bits(ModelContract.from_json(props[CONTRACT_KEY]).quantization or {})


def build_models(setting: Setting, work: Path, calibration: list[Path], method: str,
                 bits: int) -> tuple[torch.nn.Module, Path, Path]:
    """The random-weight network, its exported float model and its INT8 model with ``bits``-bit weights (made once
    per ``work`` folder; the INT8 model again when it was made with other bits)."""
    torch.manual_seed(0)
    network = build_model(setting.model, n_classes=2).eval()
    contract = ModelContract(classes=("gland", "lesion"), preprocess=setting.preprocess, mean=setting.model.mean,
                             std=setting.model.std, arch=setting.model.arch, encoder=setting.model.encoder,
                             note="random weights: a timing model")
    work.mkdir(parents=True, exist_ok=True)
    float_path, int8_path = work / "model.onnx", work / "model.int8.onnx"
    if not float_path.is_file():
        started = time.perf_counter()
        export_onnx(network, setting.preprocess.size, 18, float_path, contract)
        print(f"  exported {float_path} in {time.perf_counter() - started:.0f} s")
    if int8_bits_of(int8_path) != bits:
        inputs = np.concatenate([network_input(preprocess_frame(read_frame(path).gray, setting.preprocess).image,
                                               setting.model.mean, setting.model.std) for path in calibration])
        started = time.perf_counter()
        quantize_int8(float_path, int8_path, inputs, method, bits)
        write_contract(int8_path, replace(contract, quantization={"calibration": method, "weight_bits": bits,
                                                                  "source_sha256": file_sha256(float_path)}))
        print(f"  quantised ({method}, {len(inputs)} frames, {bits}-bit weights) in "
              f"{time.perf_counter() - started:.0f} s")
    return network, float_path, int8_path


def torch_path(network: torch.nn.Module, setting: Setting) -> Callable[[Path], np.ndarray]:
    """One frame file -> (C, H, W) bool masks with the PyTorch network."""
    def run(path: Path) -> np.ndarray:
        processed = preprocess_frame(read_frame(path).gray, setting.preprocess)
        with torch.no_grad():
            tensor = torch.from_numpy(network_input(processed.image, setting.model.mean, setting.model.std))
            probabilities = torch.sigmoid(network(tensor))[0].numpy()
        return probabilities_to_original_frame(probabilities, processed.geometry) > 0.5
    return run


def runtime_path(segmenter: Segmenter) -> Callable[[Path], np.ndarray]:
    """One frame file -> (C, H, W) bool masks with the product's runtime."""
    return lambda path: segmenter.segment(read_frame(path).gray).masks(0.5)


def seconds_per_frame(run: Callable[[T], object], frames: list[T], repeats: int) -> float:
    """Median over ``repeats`` passes of the mean seconds per frame, after one warm-up frame."""
    run(frames[0])
    passes = []
    for _ in range(repeats):
        started = time.perf_counter()
        for path in frames:
            run(path)
        passes.append((time.perf_counter() - started) / len(frames))
    return statistics.median(passes)


def sweep_options(model: Path, frames: list[Path], preprocess: PreprocessSpec, repeats: int) -> None:
    """Prints the network's s/frame per optimisation level and thread count, and the session start times."""
    images = [preprocess_frame(read_frame(path).gray, preprocess).image for path in frames]
    segmenter = Segmenter(model, precision="fp32")
    inputs = [network_input(image, segmenter.contract.mean, segmenter.contract.std) for image in images]
    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    for threads in sorted({1, physical_cores(), os.cpu_count() or 1}):
        for name, level in levels.items():
            options = session_options(threads)
            options.graph_optimization_level = level
            started = time.perf_counter()
            session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            start = time.perf_counter() - started
            feed = [{session.get_inputs()[0].name: tensor} for tensor in inputs]
            seconds = seconds_per_frame(lambda item: session.run(None, item), feed, repeats)  # type: ignore[arg-type]
            print(f"  {model.name}: {threads} thread(s), optimisation {name:8s} {seconds:6.3f} s/frame "
                  f"(session start {start:4.1f} s)")
    with tempfile.TemporaryDirectory() as cache:
        for state in ("cold cache", "warm cache"):
            started = time.perf_counter()
            Segmenter(model, precision="fp32", cache_dir=Path(cache))
            print(f"  {model.name}: Segmenter start, {state}: {time.perf_counter() - started:4.1f} s")


LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write(child.stderr.read().decode(errors="replace"))
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""
"""Runs a command and prints its exit code and peak RSS (KiB on Linux). A small process of its own starts it: a
child forked from this one (with its PyTorch models) would count this process's memory as its own."""


def app_start(model: Path, frame: Path, precision: str, cache_dir: Path) -> tuple[float, float]:
    """The real app, offscreen, from launch to its first segmented frame saved: (seconds, peak RSS in MB)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "TRUS_CACHE_DIR": str(cache_dir)}
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "app", str(frame), "--model", str(model), "--precision", precision,
                   "--screenshot", str(Path(folder) / "shot.png")]
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", LAUNCHER, *command], cwd=ROOT, env=env, capture_output=True,
                                text=True, check=True)
        elapsed = time.perf_counter() - started
    code, peak_kib = map(int, result.stdout.split())
    if code != 0:
        raise RuntimeError(f"the app failed: {result.stderr.strip()}")
    return elapsed, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", choices=("product", "demo"), default=["product", "demo"])
    parser.add_argument("--frames", type=int, default=6, help="timed frames per pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes per path (the median is shown)")
    parser.add_argument("--calibration-frames", type=int, default=8)
    parser.add_argument("--calibration", default=Int8Params().calibration, help="the INT8 calibration method")
    parser.add_argument("--weight-bits", type=int, choices=(7, 8), default=Int8Params().weight_bits,
                        help="the INT8 model's weight bits (8 runs only on CPUs with VNNI)")
    parser.add_argument("--work", type=Path, default=None, help="keep the built models here (reused when present)")
    parser.add_argument("--app", action="store_true", help="also time the app's start-up and peak memory")
    parser.add_argument("--sweep", action="store_true", help="also time ONNX Runtime's options (product model)")
    args = parser.parse_args()
    torch.set_num_threads(physical_cores())
    work = args.work or Path(tempfile.mkdtemp(prefix="trus-bench-"))
    frames = write_grey_frames(work / "frames", args.frames, seed=1)
    calibration = write_grey_frames(work / "calibration", args.calibration_frames, seed=2)
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} logical / "
          f"{physical_cores()} physical cores, INT8 kernels: {int8_kernels(cpu_flags())}; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {ort.__version__}")
    print(f"{args.frames} frames of {FRAME_WIDTH}x{FRAME_HEIGHT}, median of {args.repeats} passes, s/frame end to end")
    for key in args.settings:
        setting = settings()[key]
        print(f"\n{setting.name}")
        network, float_path, int8_path = build_models(setting, work / key, calibration, args.calibration, args.weight_bits)
        timings = {"torch fp32 eager": seconds_per_frame(torch_path(network, setting), frames, args.repeats),
                   "onnxruntime fp32": seconds_per_frame(runtime_path(Segmenter(float_path, precision="fp32")),
                                                         frames, args.repeats),
                   "onnxruntime int8": seconds_per_frame(runtime_path(Segmenter(int8_path)), frames, args.repeats)}
        reference = timings["torch fp32 eager"]
        for name, seconds in timings.items():
            print(f"  {name:18s} {seconds:6.3f} s/frame   {reference / seconds:4.2f}x torch fp32")
        print(f"  int8 vs onnxruntime fp32: {timings['onnxruntime fp32'] / timings['onnxruntime int8']:.2f}x")
        if args.sweep and key == "product":
            for path in (float_path, int8_path):
                sweep_options(path, frames[:2], setting.preprocess, repeats=2)
        if args.app and key == "product":
            for precision in ("fp32", "int8"):
                cache = work / "cache" / precision
                for state in ("cold", "cached"):
                    seconds, rss = app_start(float_path, frames[0], precision, cache)
                    print(f"  app {precision} ({state} cache): first frame after {seconds:5.1f} s, "
                          f"peak RSS {rss:6.0f} MB")
    print(f"\nself: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; models in {work}")


if __name__ == "__main__":
    main()
