"""Where ONNX Runtime's optimised graph of a model is kept, so the next start skips the optimisation.

ONNX Runtime optimises a model's graph every time it opens it (constant folding, fusing
convolutions with their activations and, for an INT8 model, its quantise-dequantise pairs
into integer kernels). It can save the result; opening that file with the optimisations off
is faster (figures: README "Inference speed"). The saved graph fits this machine and this
ONNX Runtime only, so its name holds a key of the model file (path, size, modification
time), the ONNX Runtime version and the CPU's features: a new model, an upgrade or
another machine gets a new file, never a stale one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import onnxruntime as ort

from pipeline.inference.runtime import cpu_flags

CACHE_ENV = "TRUS_CACHE_DIR"
"""Overrides :func:`default_cache_dir` (e.g. a shared folder on a department's PCs)."""


def default_cache_dir() -> Path:
    """``$TRUS_CACHE_DIR``, else the user's cache folder (``platformdirs``), else ``~/.cache/trus-seg``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    try:
        from platformdirs import user_cache_dir

        return Path(user_cache_dir("trus-seg", appauthor=False)) / "onnxruntime"
    except ImportError:
        return Path.home() / ".cache" / "trus-seg" / "onnxruntime"


def cached_graph(cache_dir: Path, model: Path) -> Path:
    """The optimised graph's file of ``model`` in ``cache_dir`` (it may not exist yet).

    Returns:
        ``<cache_dir>/<model stem>-<16 hex digits>.onnx``, the digits a hash of the model's
        resolved path, size and modification time, ONNX Runtime's version and the CPU flags.
    """
    status = model.stat()
    key = "\n".join((str(model.resolve()), str(status.st_size), str(status.st_mtime_ns), ort.__version__,
                     " ".join(sorted(cpu_flags()))))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir / f"{model.name.removesuffix('.onnx')}-{digest}.onnx"
