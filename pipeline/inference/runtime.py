"""Which model file runs, and how ONNX Runtime runs it: the INT8 model on CPUs that make it fast, session options.

The export stage may write a statically quantised model (``model.int8.onnx``, see
:mod:`pipeline.training.quantize`) next to the float one. It is the fast path only where the
CPU has integer dot-product instructions (VNNI on x86: AVX512-VNNI, AVX-VNNI or AMX; the
dot-product extension on ARM); elsewhere ONNX Runtime's 8-bit kernels are little faster, or
slower, than float. :func:`choose_model` makes that choice; ``precision`` overrides it.

A quantised model names the float model it was made from (the SHA-256 in its contract's
``quantization.source_sha256``): an INT8 file left over from an earlier model is not used.
"""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("auto", "int8", "fp32")
"""auto: INT8 when an INT8 model is present and the CPU runs it fast; int8 / fp32: that one."""
INT8_SUFFIX = ".int8.onnx"
INT8_FOLDER = "int8"
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})
"""/proc/cpuinfo flags (x86 ``flags``, ARM ``Features``) of integer dot-product instructions."""
NUMPY_INT8_FEATURES = ("AVX512VNNI", "AVX512_CLX", "AVX512_ICL", "AVX512_SPR", "ASIMDDP")
"""NumPy's names for the same instructions (the only source on Windows and macOS)."""


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


def int8_candidates(model: Path) -> list[Path]:
    """Where the INT8 model of ``model`` may lie: ``<stem>.int8.onnx`` beside it (as it is deployed), then in an
    ``int8/`` folder beside it (where the export stage writes it: a DVC output that may be empty)."""
    name = model.name.removesuffix(".onnx") + INT8_SUFFIX
    return [model.with_name(name), model.parent / INT8_FOLDER / name]


def int8_companion(model: Path) -> Path | None:
    """The first existing :func:`int8_candidates` of ``model``, or None."""
    return next((path for path in int8_candidates(model) if path.is_file()), None)


def choose_model(model: Path, precision: str = "auto", fast_int8: bool | None = None) -> ModelChoice:
    """The file to run for ``model`` (a float model as exported) at ``precision``.

    Args:
        model: the float ONNX model.
        precision: one of :data:`PRECISIONS`.
        fast_int8: whether the CPU runs INT8 fast; None: :func:`has_int8_dot_product` of this CPU.

    Returns:
        The choice. The caller still checks that an INT8 file was made from ``model``
        (:func:`file_sha256` against its contract) and falls back to ``model`` when not.

    Raises:
        PrecisionError: ``int8`` without an INT8 model.
        ValueError: an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
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
    fast = has_int8_dot_product(cpu_flags()) if fast_int8 is None else fast_int8
    if not fast:
        return ModelChoice(model, "fp32", f"fp32: this CPU ({platform.machine() or 'unknown'}) lacks integer "
                                          "dot-product instructions (VNNI), which INT8 needs to be fast")
    return ModelChoice(companion, "int8", "INT8: this CPU has integer dot-product instructions (VNNI)")


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
