"""The model's I/O contract, stored as JSON in the ONNX file's metadata.

It holds everything the app needs to reproduce training input exactly and to read the
output: class names, the full preprocessing spec, normalisation, threshold, the
post-processing of the masks, the test-time flips, the plane classes of a model that also classifies the frame's
plane, and where the model came from (test metrics, dataset and code versions).

The format is versioned (:data:`CONTRACT_VERSION`); keys added later are optional, so older
contracts still load: one without ``postprocess`` loads with post-processing off, one without
``plane_classes`` as a model without a plane output, one without ``review`` as a model
that flags only absent or broken glands, one without ``flips`` without test-time flips.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, field
from typing import Any

from pipeline.imaging.spec import PreprocessSpec
from pipeline.inference.flips import check_flips
from pipeline.inference.review import ReviewSpec

CONTRACT_KEY = "trus_contract"
CONTRACT_VERSION = 1
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
PLANE_OUTPUT_NAME = "plane"
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
class PostprocessSpec:
    """Cleaning of the thresholded masks (``inference.postprocess``); applied by
    :func:`pipeline.inference.postprocess.postprocess_masks`.

    The defaults are params.yaml's (gland and lesion). :data:`NO_POSTPROCESS` does nothing:
    a model whose contract predates post-processing loads with it, and so keeps the masks
    it was evaluated with; for the same reason a contract written before ``opening``,
    ``min_piece`` or ``min_organ`` existed loads with them off (:meth:`from_dict`).

    Attributes:
        organ: the class that is cleaned and that ``inside_organ`` classes must lie in,
            e.g. ``gland``; None switches post-processing off (the other fields are then
            ignored, so ``-S inference.postprocess.organ=null`` is the whole experiment).
        largest_component: keep only the organ's largest 8-connected component.
        opening: the radius of a morphological opening of the organ (an erosion, then a
            dilation, by a disk), as a fraction in [0, 0.5) of the organ's equivalent
            diameter (the diameter of the disk of its area); 0: off. It removes protrusions
            joined to the organ by a neck narrower than the disk and leaves a convex outline
            whose curvature radius exceeds it as it was (see
            :func:`pipeline.inference.postprocess.open_organ`).
        fill_holes: fill the organ's holes (background not 4-connected to the frame border).
        inside_organ: classes whose pixels are kept only where the (cleaned) organ is,
            e.g. ``("lesion",)``.
        min_piece: in [0, 0.05): an ``inside_organ`` class's 8-connected pieces smaller than
            this fraction of the cleaned organ's area are removed (0: off). 0.001 of a gland's
            transverse section (an ellipse of 45 x 35 mm, about 1,240 mm²) is 1.2 mm², a disk of
            1.3 mm: below what a TRUS image resolves as a lesion (see
            :func:`pipeline.inference.postprocess.drop_small_pieces`).
        min_organ: in [0, 0.05): the cleaned organ is removed, and with it the ``inside_organ``
            classes, when it covers less than this fraction of the network's square input
            (the fan crop, letterboxed; at the original size, that square mapped back); 0: off.
            0.002 of a TRUS input square (80 to 160 mm a side at 5 to 8 cm depth; 75 to 128 mm in
            the sample) is 13 to 51 mm², a disk of 4 to 8 mm: smaller than any prostate section an
            exam records (the sample's smallest covers 3.3% of its square). Such a
            "gland" is a blob under a burned-in graphic or in plain tissue, and the frame is
            flagged for review as one without a gland (see
            :func:`pipeline.inference.postprocess.postprocess_masks`).
    """

    organ: str | None = "gland"
    largest_component: bool = True
    fill_holes: bool = True
    inside_organ: tuple[str, ...] = ("lesion",)
    opening: float = 0.15
    min_piece: float = 0.001
    min_organ: float = 0.002

    def __post_init__(self) -> None:
        if self.organ is not None and (not isinstance(self.organ, str) or not self.organ):
            raise ValueError(f"postprocess.organ must be a class name or null, got {self.organ!r}")
        for name in ("largest_component", "fill_holes"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"postprocess.{name} must be true or false, got {getattr(self, name)!r}")
        number = isinstance(self.opening, numbers.Real) and not isinstance(self.opening, bool)
        if not number or not 0 <= self.opening < 0.5:
            raise ValueError(f"postprocess.opening must be a fraction in [0, 0.5) of the organ's diameter, "
                             f"got {self.opening!r}")
        number = isinstance(self.min_piece, numbers.Real) and not isinstance(self.min_piece, bool)
        if not number or not 0 <= self.min_piece < 0.05:
            raise ValueError(f"postprocess.min_piece must be a fraction in [0, 0.05) of the organ's area, "
                             f"got {self.min_piece!r}")
        number = isinstance(self.min_organ, numbers.Real) and not isinstance(self.min_organ, bool)
        if not number or not 0 <= self.min_organ < 0.05:
            raise ValueError(f"postprocess.min_organ must be a fraction in [0, 0.05) of the network's input area, "
                             f"got {self.min_organ!r}")
        inside = self.inside_organ
        if not isinstance(inside, tuple) or not all(isinstance(c, str) and c for c in inside) \
                or len(set(inside)) != len(inside):
            raise ValueError(f"postprocess.inside_organ must be a list of distinct class names, got {inside!r}")
        if self.organ in inside:
            raise ValueError(f"postprocess.inside_organ cannot hold the organ itself ({self.organ!r})")

    @property
    def active(self) -> bool:
        """Whether the spec changes any mask."""
        return self.organ is not None and (self.largest_component or self.fill_holes or bool(self.inside_organ)
                                           or self.opening > 0 or self.min_organ > 0)  # min_piece: inside_organ only

    def unknown_classes(self, classes: tuple[str, ...]) -> list[str]:
        """The classes the spec acts on that are not in ``classes``, in the spec's order (none when off)."""
        named = [] if self.organ is None else [self.organ, *self.inside_organ]
        return [name for name in named if name not in classes]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, the form stored in the ONNX metadata."""
        return {"organ": self.organ, "largest_component": self.largest_component, "fill_holes": self.fill_holes,
                "inside_organ": list(self.inside_organ), "opening": float(self.opening),
                "min_piece": float(self.min_piece), "min_organ": float(self.min_organ)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PostprocessSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: unknown keys or invalid values.
            TypeError: not a mapping, or unknown keys.
        """
        values = {"opening": 0.0, "min_piece": 0.0, "min_organ": 0.0, **values}  # before they existed: as scored
        if "inside_organ" in values:
            values["inside_organ"] = tuple(values["inside_organ"])
        return cls(**values)


NO_POSTPROCESS = PostprocessSpec(organ=None, largest_component=False, fill_holes=False, inside_organ=(),
                                 min_piece=0.0, min_organ=0.0)
"""Post-processing off: the masks are the thresholded probabilities."""


@dataclass(frozen=True)
class ModelContract:
    """What a model expects and produces.

    Input ``image``: (N, 1, size, size) float32, ``(gray / 255 - mean) / std`` of the
    preprocessed frame. Output ``probabilities``: (N, C, size, size) float32 sigmoid
    probabilities in [0, 1], one channel per class (classes may overlap: a lesion lies
    inside the gland). With :attr:`plane_classes`, a second output ``plane``: (N, K) float32
    softmax probabilities of the frame's plane, one column per plane class (rows sum to 1).

    Attributes:
        classes: output channel names, in order.
        preprocess: the preprocessing spec used in training.
        mean, std: input normalisation on [0, 1] grey values.
        threshold: probability above which a pixel belongs to a class.
        postprocess: cleaning applied to the thresholded masks (off in contracts written
            before it existed).
        flips: test-time flips (:data:`pipeline.inference.flips.FLIPS`): the probabilities
            are averaged over these mirror images of the frame before the threshold; ``none``
            in contracts written before it existed.
        arch, encoder: the network that was trained.
        metrics: test-set summary, e.g. ``{"gland": {"dice": 0.95, ...}}``.
        dataset_version: hash of the annotation snapshot (data.dvc) it was trained on.
        code_version: git commit of the code that trained it.
        note: free text shown to users, e.g. that the training data was synthetic.
        plane_classes: the plane output's column names, in order (``("transverse",
            "sagittal")``), or None: the model has no plane output.
        review: when a frame is flagged for review (its border uncertainty's threshold,
            calibrated on the validation frames at export); None in contracts written before
            it existed: then only an absent or broken gland is flagged.
        quantization: None for a float model; for a statically quantised one
            (:mod:`pipeline.training.quantize`), a JSON-ready record: ``format`` (QDQ),
            ``weights``, ``activations``, ``calibration`` (method), ``calibration_frames``,
            ``float_nodes`` (the tail kept in float), ``source_sha256`` (the float model it
            was made from) and ``gate`` (:class:`pipeline.evaluation.int8_gate.GateResult`'s
            figures on the test frames).
    """

    classes: tuple[str, ...]
    preprocess: PreprocessSpec
    mean: float
    std: float
    threshold: float = 0.5
    postprocess: PostprocessSpec = NO_POSTPROCESS
    arch: str = ""
    encoder: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    dataset_version: str = "unknown"
    code_version: str = "unknown"
    note: str = ""
    plane_classes: tuple[str, ...] | None = None
    review: ReviewSpec | None = None
    quantization: dict[str, Any] | None = None
    flips: str = "none"

    @property
    def precision(self) -> str:
        """``int8`` for a quantised model, ``fp32`` otherwise."""
        return "fp32" if self.quantization is None else "int8"

    @property
    def size(self) -> int:
        """Side of the square network input, px."""
        return self.preprocess.size

    def to_json(self) -> str:
        """Serialises the contract (with a format version) to a JSON string."""
        payload = {
            "contract_version": CONTRACT_VERSION, "classes": list(self.classes),
            "preprocess": self.preprocess.to_dict(), "mean": self.mean, "std": self.std,
            "threshold": self.threshold, "postprocess": self.postprocess.to_dict(), "arch": self.arch,
            "encoder": self.encoder, "metrics": self.metrics, "dataset_version": self.dataset_version,
            "code_version": self.code_version, "note": self.note,
            "input": INPUT_NAME, "output": OUTPUT_NAME,
            "plane_classes": None if self.plane_classes is None else list(self.plane_classes),
            "plane_output": None if self.plane_classes is None else PLANE_OUTPUT_NAME,
            "review": None if self.review is None else self.review.to_dict(),
            "quantization": self.quantization, "flips": self.flips,
        }
        return json.dumps(payload, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        """Parses :meth:`to_json` output.

        A contract without ``postprocess`` (written before it existed) loads with
        post-processing off, as that model was evaluated; one without ``plane_classes`` has
        no plane output.

        Raises:
            ContractError: not JSON, wrong version, missing/invalid fields, or a
                post-processing that names a class the model does not have.
        """
        try:
            payload = json.loads(text)
            if payload.get("contract_version") != CONTRACT_VERSION:
                raise ContractError(f"unsupported contract version {payload.get('contract_version')!r}")
            classes = tuple(str(c) for c in payload["classes"])
            stored = payload.get("postprocess")
            postprocess = NO_POSTPROCESS if stored is None else PostprocessSpec.from_dict(stored)
            unknown = postprocess.unknown_classes(classes)
            if unknown:
                raise ContractError(f"the model's post-processing names {', '.join(map(repr, unknown))}, "
                                    f"not one of its classes {list(classes)}")
            return cls(
                classes=classes, postprocess=postprocess,
                preprocess=PreprocessSpec.from_dict(payload["preprocess"]),
                mean=float(payload["mean"]), std=float(payload["std"]),
                threshold=check_threshold(payload["threshold"], "the model's threshold"),
                arch=str(payload.get("arch", "")),
                encoder=str(payload.get("encoder", "")), metrics=dict(payload.get("metrics", {})),
                dataset_version=str(payload.get("dataset_version", "unknown")),
                code_version=str(payload.get("code_version", "unknown")), note=str(payload.get("note", "")),
                plane_classes=_plane_classes(payload.get("plane_classes")),
                review=None if payload.get("review") is None else ReviewSpec.from_dict(payload["review"]),
                quantization=_quantization(payload.get("quantization")),
                flips=check_flips(payload.get("flips", "none"), "the model's flips"),
            )
        except ContractError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ContractError(f"malformed model contract ({error})") from error


def _quantization(stored: Any) -> dict[str, Any] | None:
    """The contract's ``quantization``: None (absent or null: a float model) or a record naming the float
    model it was made from.

    Raises:
        ContractError: anything else.
    """
    if stored is None:
        return None
    if not isinstance(stored, dict) or not isinstance(stored.get("source_sha256"), str):
        raise ContractError(f"the model's quantization must be null or a record with source_sha256, got {stored!r}")
    return dict(stored)


def _plane_classes(stored: Any) -> tuple[str, ...] | None:
    """The contract's ``plane_classes``: None (absent or null), or at least 2 distinct names.

    Raises:
        ContractError: anything else.
    """
    if stored is None:
        return None
    if not isinstance(stored, list) or len(stored) < 2 or len(set(map(str, stored))) != len(stored) \
            or not all(isinstance(name, str) and name for name in stored):
        raise ContractError(f"the model's plane_classes must be a list of at least 2 distinct names, got {stored!r}")
    return tuple(stored)
