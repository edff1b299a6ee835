"""The model's I/O contract, stored as JSON in the ONNX file's metadata.

It holds everything the app needs to reproduce training input exactly and to read the
output: class names, the full preprocessing spec, normalisation, threshold, and where
the model came from (test metrics, dataset and code versions).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipeline.imaging.spec import PreprocessSpec

CONTRACT_KEY = "trus_contract"
CONTRACT_VERSION = 1
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
THRESHOLD_RANGE = (0.01, 0.99)
"""Allowed probability thresholds, inclusive: params.yaml (``inference.threshold``), ``trus segment
--threshold``, the app's slider and a model's contract all use this one range."""


def check_threshold(value: float, name: str = "threshold") -> float:
    """``value`` as a float if it lies in :data:`THRESHOLD_RANGE`.

    Raises:
        ValueError: outside the range (the message names ``name``).
    """
    low, high = THRESHOLD_RANGE
    if not low <= float(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)


class ContractError(ValueError):
    """The model's metadata is missing or malformed."""


@dataclass(frozen=True)
class ModelContract:
    """What a model expects and produces.

    Input ``image``: (N, 1, size, size) float32, ``(gray / 255 - mean) / std`` of the
    preprocessed frame. Output ``probabilities``: (N, C, size, size) float32 sigmoid
    probabilities in [0, 1], one channel per class (classes may overlap: a lesion lies
    inside the gland).

    Attributes:
        classes: output channel names, in order.
        preprocess: the preprocessing spec used in training.
        mean, std: input normalisation on [0, 1] grey values.
        threshold: probability above which a pixel belongs to a class.
        arch, encoder: the network that was trained.
        metrics: test-set summary, e.g. ``{"gland": {"dice": 0.95, ...}}``.
        dataset_version: hash of the annotation snapshot (data.dvc) it was trained on.
        code_version: git commit of the code that trained it.
        note: free text shown to users, e.g. that the training data was synthetic.
    """

    classes: tuple[str, ...]
    preprocess: PreprocessSpec
    mean: float
    std: float
    threshold: float = 0.5
    arch: str = ""
    encoder: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset_version: str = "unknown"
    code_version: str = "unknown"
    note: str = ""

    @property
    def size(self) -> int:
        """Side of the square network input, px."""
        return self.preprocess.size

    def to_json(self) -> str:
        """Serialises the contract (with a format version) to a JSON string."""
        payload = {
            "contract_version": CONTRACT_VERSION, "classes": list(self.classes),
            "preprocess": self.preprocess.to_dict(), "mean": self.mean, "std": self.std,
            "threshold": self.threshold, "arch": self.arch, "encoder": self.encoder,
            "metrics": self.metrics, "dataset_version": self.dataset_version,
            "code_version": self.code_version, "note": self.note,
            "input": INPUT_NAME, "output": OUTPUT_NAME,
        }
        return json.dumps(payload, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        """Parses :meth:`to_json` output.

        Raises:
            ContractError: not JSON, wrong version, or missing/invalid fields.
        """
        try:
            payload = json.loads(text)
            if payload.get("contract_version") != CONTRACT_VERSION:
                raise ContractError(f"unsupported contract version {payload.get('contract_version')!r}")
            return cls(
                classes=tuple(str(c) for c in payload["classes"]),
                preprocess=PreprocessSpec.from_dict(payload["preprocess"]),
                mean=float(payload["mean"]), std=float(payload["std"]),
                threshold=check_threshold(payload["threshold"], "the model's threshold"), arch=str(payload.get("arch", "")),
                encoder=str(payload.get("encoder", "")), metrics=dict(payload.get("metrics", {})),
                dataset_version=str(payload.get("dataset_version", "unknown")),
                code_version=str(payload.get("code_version", "unknown")), note=str(payload.get("note", "")),
            )
        except ContractError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ContractError(f"malformed model contract ({error})") from error
