"""Typed, frozen view of ``params.yaml``: the one source of truth for parameters.

Each stage calls :func:`load_params` once and reads only the sections it declares in
``dvc.yaml``. Unknown keys and bad values raise :class:`ParamsError`, which names the
file and the key, so a typo in an experiment (``dvc exp run -S ...``) fails loudly.

Messages name a setting through :func:`setting`: by its params.yaml key (``data.classes``,
``qc.outside_image: warn``) in the stages, or by the running command's option (``--classes``,
``--qc outside_image=warn``) inside :func:`named_by_options`, which a CLI command enters with
the table of the settings its options set.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pipeline.augment_spec import AugmentParams
from pipeline.int8_spec import Int8Params
from pipeline.imaging.masks import MAX_CLASSES
from pipeline.imaging.spec import FilterSpec, PreprocessSpec
from pipeline.inference.contract import PostprocessSpec, check_threshold
from pipeline.inference.flips import check_flips
from pipeline.planes import DEFAULT_PLANE_PATTERN, check_plane_pattern
from pipeline.loss_spec import LossParams
from pipeline.patch_spec import PatchParams

PARAMS_FILE = Path("params.yaml")
EXPORT_FORMATS = ("auto", "coco-segmentation", "png-mask-semantic", "yolov8")
QC_ACTIONS = ("ignore", "warn", "error")
PROJECT_ARCHS = ("SegNet", "UNetBilinear")
"""The project's own architectures (``pipeline.training.architectures``), beside segmentation_models_pytorch's."""
PLANE_CLASSIFIERS = ("frame", "encoder")  # model.plane_classifier: a CNN on the whole frame, or smp's head on the encoder
UNSUPPORTED_ARCHS = {
    "dpt": "its ViT encoder is built for one input size, and resizing its position embedding to "
           "preprocess.size (bicubic, antialiased) does not export to ONNX at opset 18",
}
"""segmentation_models_pytorch architectures refused up front (lower-case name -> why)."""


class ParamsError(ValueError):
    """A value in params.yaml is missing, unknown or out of range."""


_OPTIONS: ContextVar[Mapping[str, str] | None] = ContextVar("setting_options", default=None)


@contextmanager
def named_by_options(options: Mapping[str, str]) -> Iterator[None]:
    """Within the block, :func:`setting` names settings by the running command's options.

    Args:
        options: params key -> option, e.g. ``{"data.classes": "--classes"}``; a key
            ``"qc.*"`` maps a whole section to one ``--qc FIELD=VALUE`` option.
    """
    token = _OPTIONS.set(dict(options))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def setting(key: str, value: object = None) -> str:
    """How messages name a setting (and a value for it) for the command that is running.

    Args:
        key: the dotted params.yaml key, e.g. ``data.classes`` or ``qc.outside_image``.
        value: a value to show with it, or None for the setting alone.

    Returns:
        In a stage: ``data.classes``, ``qc.outside_image: warn``. Inside
        :func:`named_by_options`: ``--classes``, ``--qc outside_image=warn``, or, for a
        setting the command has no option for, ``qc.tiny_polygon_px: 9 in params.yaml``.
    """
    options = _OPTIONS.get()
    shown = f"{key}: {value}" if value is not None else key
    if options is None:
        return shown
    section, _, name = key.partition(".")
    if key in options:
        return options[key] if value is None else f"{options[key]} {value}"
    if f"{section}.*" in options:
        option = options[f"{section}.*"]
        return f"{option} {name}" if value is None else f"{option} {name}={value}"
    return f"{shown} in params.yaml"


@dataclass(frozen=True)
class RoboflowParams:
    """A pinned Roboflow dataset version (immutable on Roboflow's side), for ``data.source: roboflow``.

    Attributes:
        workspace, project, version: the dataset version's address.
        timeout_s: the longest wait for Roboflow (export generation included), seconds.
    """

    workspace: str = "hospital-urology"
    project: str = "prostate-trus"
    version: int = 1
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.version < 1 or self.timeout_s <= 0:
            raise ParamsError("data.roboflow.version must be >= 1 and data.roboflow.timeout_s > 0")


@dataclass(frozen=True)
class DataParams:
    """Where annotations come from and which classes become output channels.

    Attributes:
        source: ``local`` (the export at ``export_dir``) or ``roboflow`` (the API).
        export_dir: a Roboflow export, unpacked folder or .zip.
        format: the export format (Roboflow's name for it), or ``auto`` for local exports.
        roboflow: the pinned dataset version for the API source.
        classes: output channel names, in order, mapped by name onto the export's classes.
        patient_pattern: regex with a ``patient`` group, applied to the original file name.
        unannotated: frames without annotations: ``keep`` (background) or ``drop``.
        frames_manifest: a ``trus frames`` manifest.csv joined by original name, which
            supplies the patient key and pixel spacing (and the plane, in a ``plane``
            column); None when frames were not made so.
        plane_pattern: regex with a ``plane`` group on the original file name, or None; the
            third source of a frame's plane (``pipeline.planes``).
    """

    source: str = "local"
    export_dir: str = "data"
    format: str = "coco-segmentation"
    roboflow: RoboflowParams = field(default_factory=RoboflowParams)
    classes: tuple[str, ...] = ("gland", "lesion")
    patient_pattern: str = r"^(?P<patient>[^_]+)_"
    unannotated: str = "keep"
    frames_manifest: str | None = None
    plane_pattern: str | None = DEFAULT_PLANE_PATTERN

    def __post_init__(self) -> None:
        _check_choice(setting("data.source"), self.source, ("local", "roboflow"))
        _check_choice(setting("data.format"), self.format, EXPORT_FORMATS)
        _check_choice(setting("data.unannotated"), self.unannotated, ("keep", "drop"))
        if self.source == "roboflow" and self.format == "auto":
            raise ParamsError(f"{setting('data.format', 'auto')} only works for local exports; name the format to "
                              "download from Roboflow (coco-segmentation, png-mask-semantic or yolov8)")
        _check_classes(self.classes)
        _check_patient_pattern(self.patient_pattern)
        problem = check_plane_pattern(self.plane_pattern)
        if problem:
            raise ParamsError(f"{setting('data.plane_pattern')} {problem}")


def _check_classes(classes: tuple[str, ...]) -> None:
    """Raises ParamsError unless ``classes`` are 1 to MAX_CLASSES unique names (one bit each in a mask file)."""
    if not classes or len(set(classes)) != len(classes):
        raise ParamsError(f"{setting('data.classes')} must be a non-empty list of unique names, got {list(classes)}")
    if len(classes) > MAX_CLASSES:
        raise ParamsError(f"{setting('data.classes')}: at most {MAX_CLASSES} classes fit the mask files (one bit "
                          f"per class), got {len(classes)}: {', '.join(classes)}")


def _check_patient_pattern(pattern: str) -> None:
    """Raises ParamsError unless ``pattern`` compiles and has a ``(?P<patient>...)`` group."""
    try:
        groups = re.compile(pattern).groupindex
    except re.error as error:
        raise ParamsError(f"{setting('data.patient_pattern')} is not a regular expression ({error})") from None
    if "patient" not in groups:
        raise ParamsError(f"{setting('data.patient_pattern')} needs a named group (?P<patient>...)")


@dataclass(frozen=True)
class QcParams:
    """What each annotation-quality finding does: ``ignore``, ``warn`` or ``error`` (stops the pipeline).

    Attributes:
        tiny_polygon_px: polygons with a smaller area (px^2) count as tiny.
    """

    empty_mask: str = "warn"
    tiny_polygon: str = "warn"
    tiny_polygon_px: float = 25.0
    self_intersecting: str = "warn"
    outside_image: str = "error"
    duplicate_frame: str = "warn"
    size_mismatch: str = "error"
    class_without_examples: str = "error"
    unknown_patient: str = "warn"
    unknown_category: str = "error"
    unknown_mask_value: str = "error"
    annotation_without_image: str = "warn"
    unlisted_image: str = "warn"

    def __post_init__(self) -> None:
        for kind in self.kinds():
            _check_choice(setting(f"qc.{kind}"), getattr(self, kind), QC_ACTIONS)
        if not self.tiny_polygon_px >= 0:
            raise ParamsError(f"{setting('qc.tiny_polygon_px')} must be a number >= 0, got {self.tiny_polygon_px}")

    @classmethod
    def kinds(cls) -> tuple[str, ...]:
        """The finding kinds: every field but ``tiny_polygon_px``."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "tiny_polygon_px")

    def action(self, kind: str) -> str:
        """``ignore``, ``warn`` or ``error`` for a finding kind (a field name)."""
        return str(getattr(self, kind))


@dataclass(frozen=True)
class SplitParams:
    """Patient-grouped train/val/test split, and k folds over the non-test patients.

    Attributes:
        method: ``patient`` (seeded, patient-grouped) or ``roboflow`` (Roboflow's own
            train/valid/test folders, with a warning when a patient straddles them).
        seed: shuffling seed.
        fractions: train, val, test shares of the patients (method ``patient``).
        folds: k >= 2 folds over the train+val patients, written to the split file.
        stratify: a class whose presence per patient is balanced across subsets and
            folds, or None.
    """

    method: str = "patient"
    seed: int = 42
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    folds: int = 5
    stratify: str | None = "lesion"

    def __post_init__(self) -> None:
        _check_choice("split.method", self.method, ("patient", "roboflow"))
        if len(self.fractions) != 3 or any(f < 0 for f in self.fractions) or abs(sum(self.fractions) - 1) > 1e-6:
            raise ParamsError(f"split.fractions must be 3 non-negative numbers summing to 1, got {list(self.fractions)}")
        if self.folds < 2:
            raise ParamsError(f"split.folds must be >= 2, got {self.folds}")


@dataclass(frozen=True)
class ModelParams:
    """Network architecture and its input normalisation (mean/std of [0, 1] grey values).

    ``arch`` names a segmentation_models_pytorch architecture (``smp.create_model``; checked
    when the network is built) or one of the project's :data:`PROJECT_ARCHS`, in any letter
    case. The project's architectures have no pretrained encoder: for them ``encoder`` does
    not apply and is stored as ``""`` (so checkpoints and the model's contract name none),
    and ``encoder_weights`` and ``weights_path`` must be null (a ParamsError says so).

    ``plane_head`` adds a classifier of the frame's plane (transverse or sagittal) on the
    encoder (``pipeline.training.plane_head``): ``auto`` (on when the training frames hold
    labelled frames of both planes and the architecture is a segmentation_models_pytorch one;
    the train stage resolves it and the checkpoint stores the boolean), ``true`` or ``false``.
    The project's architectures have no such head: ``true`` is refused for them.
    ``plane_classifier`` says what the head is: ``frame`` (a small CNN of its own on a
    64 px thumbnail of the whole frame, ``pipeline.training.frame_plane``) or ``encoder``
    (smp's classification head on the segmentation encoder's deepest features).
    """

    arch: str = "FPN"
    encoder: str = "resnet152"
    encoder_weights: str | None = "imagenet"
    weights_path: str | None = None
    mean: float = 0.449
    std: float = 0.226
    plane_head: bool | str = "auto"
    plane_classifier: str = "frame"

    def __post_init__(self) -> None:
        if self.std <= 0:
            raise ParamsError(f"model.std must be > 0, got {self.std}")
        if self.plane_head != "auto" and not isinstance(self.plane_head, bool):
            raise ParamsError(f"model.plane_head must be auto, true or false, got {self.plane_head!r}")
        if self.plane_classifier not in PLANE_CLASSIFIERS:
            raise ParamsError(f"model.plane_classifier must be {' or '.join(PLANE_CLASSIFIERS)}, "
                              f"got {self.plane_classifier!r}")
        if str(self.arch).lower() in UNSUPPORTED_ARCHS:
            raise ParamsError(f"model.arch: {self.arch} is not supported: {UNSUPPORTED_ARCHS[str(self.arch).lower()]}")
        project = {name.lower(): name for name in PROJECT_ARCHS}.get(str(self.arch).lower())
        if project is None:
            return
        for key in ("encoder_weights", "weights_path"):
            if getattr(self, key) is not None:
                raise ParamsError(f"model.{key}: {project} trains from scratch (it has no pretrained encoder); "
                                  f"set model.{key}=null")
        if self.plane_head is True:
            raise ParamsError(f"model.plane_head: {project} has no plane classifier (only segmentation_models_pytorch "
                              "architectures do); set model.plane_head=auto or false")
        object.__setattr__(self, "arch", project)
        object.__setattr__(self, "encoder", "")


@dataclass(frozen=True)
class TrainParams:
    """Optimisation: the ``loss`` (Dice + BCE by default), Adam, ReduceLROnPlateau on validation Dice.

    The same recipe trains the deployed model (the split's train/val) and every
    cross-validation fold (``python -m pipeline.stages.train --fold K``, ``cv/dvc.yaml``).

    How the run goes (README "Training"):

    Attributes:
        patch: the training window (whole frames by default), see ``pipeline.training.patches``.
        plane_weight: >= 0, the weight of the plane head's cross-entropy in the total loss
            (``model.plane_head``; the batch's frames of a known plane only).
        keep: ``last`` (the model after the epoch budget, or the epoch early stopping
            stopped at) or ``best`` (the epoch with the best validation score).
        early_stopping_patience: None (train every epoch), or stop after this many epochs
            without a better validation score.
        processes: training processes (DistributedDataParallel under torchrun); each takes
            ``batch_size / processes`` frames of every batch.
        workers: DataLoader worker processes, or ``auto`` (see ``pipeline.training.devices``).
        channels_last: NHWC memory layout, or ``auto`` (on CUDA, off on the CPU).
        mixed_precision: autocast dtype ``float32`` (none), ``float16``, ``bfloat16``, or
            ``auto`` (float16 on CUDA, float32 on the CPU).
    """

    epochs: int = 40
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    loss: LossParams = field(default_factory=LossParams)
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    seed: int = 0
    device: str = "auto"
    augment: AugmentParams = field(default_factory=AugmentParams)
    patch: PatchParams = field(default_factory=PatchParams)
    plane_weight: float = 0.2
    keep: str = "last"
    early_stopping_patience: int | None = None
    processes: int = 1
    workers: int | str = "auto"
    channels_last: bool | str = "auto"
    mixed_precision: str = "auto"

    def __post_init__(self) -> None:
        _check_choice("train.device", self.device, ("auto", "cpu", "cuda"))
        if self.epochs < 1 or self.batch_size < 1:
            raise ParamsError("train.epochs and train.batch_size must be >= 1")
        if isinstance(self.plane_weight, bool) or not isinstance(self.plane_weight, (int, float)) \
                or not self.plane_weight >= 0:
            raise ParamsError(f"train.plane_weight must be a number >= 0, got {self.plane_weight!r}")
        _check_run_settings(self)


def _is_count(value: object, minimum: int) -> bool:
    """True for an int (not a bool) >= ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_run_settings(train: TrainParams) -> None:
    """Checks how training runs: what the checkpoint keeps, early stopping, processes, loading, precision.

    Raises:
        ParamsError: a value out of range, or ``train.batch_size`` not divisible by
            ``train.processes`` (each process takes an equal share of the global batch).
    """
    _check_choice("train.keep", train.keep, ("last", "best"))
    _check_choice("train.mixed_precision", train.mixed_precision, ("auto", "float32", "float16", "bfloat16"))
    if train.early_stopping_patience is not None and not _is_count(train.early_stopping_patience, 1):
        raise ParamsError(f"train.early_stopping_patience must be null or a number of epochs >= 1, "
                          f"got {train.early_stopping_patience!r}")
    if not _is_count(train.processes, 1):
        raise ParamsError(f"train.processes must be a number >= 1, got {train.processes!r}")
    if train.batch_size % train.processes:
        raise ParamsError(f"train.batch_size {train.batch_size} is not divisible by train.processes "
                          f"{train.processes}: each process takes batch_size / processes frames of every batch")
    if train.workers != "auto" and not _is_count(train.workers, 0):
        raise ParamsError(f"train.workers must be auto or a number >= 0, got {train.workers!r}")
    if train.channels_last != "auto" and not isinstance(train.channels_last, bool):
        raise ParamsError(f"train.channels_last must be auto, true or false, got {train.channels_last!r}")


@dataclass(frozen=True)
class InferenceParams:
    """Turning probabilities into masks (validation, evaluation, and the exported model's contract).

    Attributes:
        threshold: a pixel belongs to a class when its probability is strictly above it.
        postprocess: cleaning of the thresholded masks (``organ: null`` turns it off). The
            classes it names must be in ``data.classes``: the stages that use it check
            (:meth:`check_classes`), the others do not care.
        flips: test-time flips, a choice of :data:`pipeline.inference.flips.FLIPS`: the
            probabilities averaged over the frame's mirror images before the threshold.
    """

    threshold: float = 0.5
    postprocess: PostprocessSpec = field(default_factory=PostprocessSpec)
    flips: str = "none"

    def __post_init__(self) -> None:
        try:
            check_threshold(self.threshold, "inference.threshold")
            check_flips(self.flips, "inference.flips")
        except ValueError as error:
            raise ParamsError(str(error)) from None

    def check_classes(self, classes: tuple[str, ...]) -> None:
        """Raises ParamsError if :attr:`postprocess` acts on a class that is not in ``classes`` (``data.classes``)."""
        unknown = self.postprocess.unknown_classes(classes)
        if unknown:
            raise ParamsError(f"inference.postprocess names {', '.join(map(repr, unknown))}, which "
                              f"{'is' if len(unknown) == 1 else 'are'} not in data.classes {list(classes)}; "
                              "set inference.postprocess.organ and inside_organ (organ: null turns it off)")


@dataclass(frozen=True)
class EvaluateParams:
    """Evaluation reporting."""

    overlays: int = 6


@dataclass(frozen=True)
class ExportParams:
    """ONNX export, its parity check against PyTorch, and the calibration of the review flag.

    Attributes:
        opset: the ONNX opset.
        parity_atol: the largest |ONNX Runtime - PyTorch| probability allowed on test frames.
        review_dice_floor: in (0, 1]: a validation frame whose gland Dice is below it counts
            as one a person should have reviewed, when the review flag's threshold is
            calibrated (:func:`pipeline.inference.review.calibrate_review`).
        int8: the INT8 model and its gate (:class:`pipeline.int8_spec.Int8Params`).
    """

    opset: int = 18
    parity_atol: float = 1e-3
    review_dice_floor: float = 0.9
    int8: Int8Params = field(default_factory=Int8Params)

    def __post_init__(self) -> None:
        if not 0.0 < self.review_dice_floor <= 1.0:
            raise ParamsError(f"{setting('export.review_dice_floor')} must be in (0, 1], got {self.review_dice_floor}")


@dataclass(frozen=True)
class OodParams:
    """The out-of-distribution check (stage ``ood``): the deployed model on sample frames of other scanners.

    Attributes:
        variants: ``trus sample`` scanner variants to render, each scored on its own
            (checked by the stage against ``pipeline.synthetic.VARIANT_NAMES``).
        patients: synthetic patients per variant, 1..100.
        frames_per_patient: frames per patient, 1..20.
        seed: the sample seed, >= 0, the same for every variant (the same patients on each
            scanner); not the training sample's (the demo's is 0).
    """

    variants: tuple[str, ...] = ("default", "probe_bottom", "wide", "wide_bottom", "logo_calipers", "colour", "jpeg",
                                 "size_800x600", "size_1024x768", "worst_case")
    patients: int = 10
    frames_per_patient: int = 5
    seed: int = 1000

    def __post_init__(self) -> None:
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ParamsError(f"ood.variants must be a non-empty list of unique names, got {list(self.variants)}")
        if not (1 <= self.patients <= 100 and 1 <= self.frames_per_patient <= 20 and self.seed >= 0):
            raise ParamsError(f"ood.patients must be in 1..100, ood.frames_per_patient in 1..20 and ood.seed >= 0; "
                              f"got {self.patients}, {self.frames_per_patient}, {self.seed}")


@dataclass(frozen=True)
class CvParams:
    """Cross-validation (``cv/dvc.yaml``, run on request): its folds and the bootstrap of its intervals.

    Attributes:
        folds: the folds to train and evaluate, a DVC ``foreach`` list; the report needs all
            of 0..split.folds-1 (checked there, against ``split.folds``).
        resamples: bootstrap resamples of the patients, >= 100.
        confidence: the intervals' coverage, in (0, 1).
        seed: the bootstrap's seed, >= 0.
    """

    folds: tuple[int, ...] = (0, 1, 2, 3, 4)
    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.folds or len(set(self.folds)) != len(self.folds) or any(
                isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in self.folds):
            raise ParamsError(f"cv.folds must be a non-empty list of distinct fold numbers >= 0, got {list(self.folds)}")
        if self.resamples < 100 or not 0 < self.confidence < 1 or self.seed < 0:
            raise ParamsError(f"cv.resamples must be >= 100, cv.confidence in (0, 1) and cv.seed >= 0; got "
                              f"{self.resamples}, {self.confidence}, {self.seed}")


@dataclass(frozen=True)
class Params:
    """All of params.yaml."""

    data: DataParams = field(default_factory=DataParams)
    qc: QcParams = field(default_factory=QcParams)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    split: SplitParams = field(default_factory=SplitParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    inference: InferenceParams = field(default_factory=InferenceParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    export: ExportParams = field(default_factory=ExportParams)
    ood: OodParams = field(default_factory=OodParams)
    cv: CvParams = field(default_factory=CvParams)


T = TypeVar("T")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ParamsError(f"{key} must be one of {', '.join(choices)}; got {value!r}")


def build(cls: type[T], values: dict[str, Any] | None, where: str) -> T:
    """Builds a (nested) frozen dataclass from a mapping, rejecting unknown keys.

    Args:
        cls: the dataclass type.
        values: the mapping read from YAML (None means all defaults).
        where: dotted location for error messages, e.g. ``"train"``.

    Raises:
        ParamsError: an unknown key, or a value the dataclass rejects.
    """
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamsError(f"unknown key(s) in {where}: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else None  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            kwargs[name] = build(type(default), value, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(error, ParamsError):
            raise
        raise ParamsError(f"{where}: {error}") from error


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Reads params.yaml into :class:`Params`.

    Raises:
        ParamsError: the file is missing, not YAML, or holds a bad value; the
            message starts with the file name.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ParamsError(f"{path}: cannot read parameters ({error})") from error
    try:
        return build(Params, raw, "params")
    except ParamsError as error:
        raise ParamsError(f"{path}: {error}") from error


__all__ = [
    "AugmentParams", "CvParams", "DataParams", "EvaluateParams", "ExportParams", "FilterSpec", "InferenceParams", "LossParams",
    "ModelParams", "OodParams", "Params", "ParamsError", "PreprocessSpec", "QcParams", "RoboflowParams", "SplitParams",
    "TrainParams",
    "build", "load_params", "named_by_options", "setting",
]
