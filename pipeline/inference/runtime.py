"""Which model file runs, and how ONNX Runtime runs it: the INT8 model on CPUs that make it fast and exact.

The export stage may write a statically quantised model (``model.int8.onnx``, see
:mod:`pipeline.training.quantize`) next to the float one. ONNX Runtime's 8-bit kernels are fast
on two kinds of CPU (:func:`int8_kernels`):

- ``dot-product``: integer dot-product instructions (VNNI on x86: AVX512-VNNI, AVX-VNNI or AMX;
  the dot-product extension on ARM). Exact sums, whatever the weights' bits.
- ``avx2``: x86 with AVX2 but no VNNI (most office PCs before 2021, AMD before Zen 4). The kernels
  add pairs of u8 x s8 products in 16 bits (``vpmaddubsw``), which saturates with 8-bit weights
  (255 x 127 x 2 > 32767) and not with 7-bit ones (255 x 64 x 2): only a model quantised with
  7-bit weights (``export.int8.weight_bits``, the contract's ``quantization.weight_bits``) gives
  there the masks its gate measured. Measured on an AMD EPYC (Zen 3): the product model's INT8
  runs 2.1x faster than its fp32 (README "INT8 on CPUs without VNNI").
- ``none``: anything else; the float model runs.

:func:`choose_model` makes the first choice from the CPU; the caller (``Segmenter``) then checks
the INT8 model's weight bits with :func:`int8_exact`. ``precision`` overrides the choice, but
never runs a model this CPU would compute wrongly.

A quantised model names the float model it was made from (the SHA-256 in its contract's
``quantization.source_sha256``): an INT8 file left over from an earlier model is not used.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRECISIONS = ("auto", "int8", "fp32")
"""auto: INT8 when an INT8 model is present and the CPU runs it fast and exactly; int8 / fp32: that one."""
INT8_SUFFIX = ".int8.onnx"
INT8_FOLDER = "int8"
INT8_KERNELS = ("dot-product", "avx2", "none")
"""What ONNX Runtime's 8-bit kernels use on a CPU (:func:`int8_kernels`)."""
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})
"""/proc/cpuinfo flags (x86 ``flags``, ARM ``Features``) of integer dot-product instructions."""
NUMPY_INT8_FEATURES = ("AVX512VNNI", "AVX512_CLX", "AVX512_ICL", "AVX512_SPR", "ASIMDDP")
"""NumPy's names for the same instructions (the only source on Windows and macOS)."""
AVX2_FLAGS = frozenset({"avx2"})
"""/proc/cpuinfo's and NumPy's (lowered) name of AVX2."""
LEGACY_WEIGHT_BITS = 8
"""The weight bits of an INT8 model whose contract does not say (exported before ``weight_bits``)."""


class PrecisionError(ValueError):
    """The requested precision cannot be met (no INT8 model, or one made from another model)."""


@dataclass(frozen=True)
class ModelChoice:
    """The model file to run and why.

    Attributes:
        path: the ONNX file.
        precision: ``int8`` or ``fp32``.
        reason: one sentence for the model card and the logs, e.g. ``"INT8: this CPU has VNNI"``.
    """

    path: Path
    precision: str
    reason: str


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags, lower case: /proc/cpuinfo's where it exists (Linux), plus NumPy's run-time
    detection (every platform; upper-case names lowered)."""
    flags: set[str] = set()
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("flags", "features"):
                flags.update(value.lower().split())
    except OSError:
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__  # type: ignore[attr-defined]
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__  # type: ignore[attr-defined,no-redef]
    flags.update(name.lower() for name in NUMPY_INT8_FEATURES if __cpu_features__.get(name))
    return frozenset(flags)


def has_int8_dot_product(flags: frozenset[str]) -> bool:
    """Whether ``flags`` (:func:`cpu_flags`) include integer dot-product instructions."""
    return bool(flags & (INT8_FLAGS | {name.lower() for name in NUMPY_INT8_FEATURES}))


def int8_kernels(flags: frozenset[str]) -> str:
    """Which of :data:`INT8_KERNELS` ONNX Runtime's 8-bit kernels use on a CPU with ``flags`` (:func:`cpu_flags`)."""
    if has_int8_dot_product(flags):
        return "dot-product"
    if flags & AVX2_FLAGS:
        return "avx2"
    return "none"


def weight_bits(quantization: Mapping[str, Any]) -> int:
    """An INT8 model's weight bits, from its contract's ``quantization`` record (8 when it does not say)."""
    bits = quantization.get("weight_bits", LEGACY_WEIGHT_BITS)
    return bits if isinstance(bits, int) and not isinstance(bits, bool) else LEGACY_WEIGHT_BITS


def int8_exact(kernels: str, bits: int) -> bool:
    """Whether an INT8 model with ``bits``-bit weights gives on ``kernels`` (:data:`INT8_KERNELS`) the sums its
    gate measured: not with 8-bit weights on ``avx2``, whose 16-bit pair sums saturate."""
    return not (kernels == "avx2" and bits > 7)


def inexact_reason(kernels: str, bits: int) -> str:
    """Why an INT8 model does not run here (:func:`int8_exact` is False), one sentence."""
    return (f"its {bits}-bit weights overflow the 16-bit sums of this CPU's {kernels.upper()} integer kernels "
            "(it lacks VNNI), so its masks would differ from those its gate measured; export it with "
            "export.int8.weight_bits: 7")


def int8_candidates(model: Path) -> list[Path]:
    """Where the INT8 model of ``model`` may lie: ``<stem>.int8.onnx`` beside it (as it is deployed), then in an
    ``int8/`` folder beside it (where the export stage writes it: a DVC output that may be empty)."""
    name = model.name.removesuffix(".onnx") + INT8_SUFFIX
    return [model.with_name(name), model.parent / INT8_FOLDER / name]


def int8_companion(model: Path) -> Path | None:
    """The first existing :func:`int8_candidates` of ``model``, or None."""
    return next((path for path in int8_candidates(model) if path.is_file()), None)


KERNEL_REASONS = {
    "dot-product": "INT8: this CPU has integer dot-product instructions (VNNI)",
    "avx2": "INT8: 7-bit weights, exact on this CPU's AVX2 integer kernels (it lacks VNNI)",
}
"""The model card's reason for running INT8 under ``auto``, per :data:`INT8_KERNELS`."""


def choose_model(model: Path, precision: str = "auto", kernels: str | None = None) -> ModelChoice:
    """The file to run for ``model`` (a float model as exported) at ``precision``.

    Args:
        model: the float ONNX model.
        precision: one of :data:`PRECISIONS`.
        kernels: one of :data:`INT8_KERNELS`; None: :func:`int8_kernels` of this CPU.

    Returns:
        The choice. The caller still checks that an INT8 file was made from ``model``
        (:func:`file_sha256` against its contract) and that it is exact here (:func:`int8_exact`
        with its weight bits), and falls back to ``model`` when not.

    Raises:
        PrecisionError: ``int8`` without an INT8 model.
        ValueError: an unknown precision or kernel kind.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    kernels = int8_kernels(cpu_flags()) if kernels is None else kernels
    if kernels not in INT8_KERNELS:
        raise ValueError(f"kernels must be one of {', '.join(INT8_KERNELS)}, got {kernels!r}")
    if precision == "fp32":
        return ModelChoice(model, "fp32", "fp32: chosen in the settings")
    companion = int8_companion(model)
    if precision == "int8":
        if companion is None:
            raise PrecisionError(f"{model}: no INT8 model beside it "
                                 f"({' or '.join(str(path) for path in int8_candidates(model))})")
        return ModelChoice(companion, "int8", "INT8: chosen in the settings")
    if companion is None:
        return ModelChoice(model, "fp32", "fp32: no INT8 model beside it")
    if kernels == "none":
        return ModelChoice(model, "fp32", f"fp32: this CPU ({platform.machine() or 'unknown'}) has neither integer "
                                          "dot-product instructions (VNNI) nor AVX2, which INT8 needs to be fast")
    return ModelChoice(companion, "int8", KERNEL_REASONS[kernels])


def file_sha256(path: Path, chunk_bytes: int = 1 << 22) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def physical_cores() -> int:
    """The machine's physical cores (ONNX Runtime's best intra-op thread count), at least 1.

    Hyper-threads share a core's vector units: a second thread per core adds little to a
    convolution and costs synchronisation.
    """
    try:
        import psutil

        count = psutil.cpu_count(logical=False)
    except ImportError:
        count = None
    return max(1, count or os.cpu_count() or 1)
