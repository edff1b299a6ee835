"""ONNX Runtime predictor: original frame in, per-class probabilities at the frame's size out.

A model whose contract names ``plane_classes`` also gives the frame's plane probabilities
(its ``plane`` output, :class:`Segmentation.plane_probabilities`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.imaging.fan import Fan
from pipeline.imaging.geometry import FrameGeometry, probabilities_to_original_frame
from pipeline.imaging.preprocessing import network_input, preprocess_frame
from pipeline.inference.contract import (CONTRACT_KEY, NO_POSTPROCESS, PLANE_OUTPUT_NAME, ContractError, ModelContract,
                                        PostprocessSpec)
from pipeline.inference.flips import mirrored_mean
from pipeline.inference.gland_size import GLAND_CLASS
from pipeline.inference.postprocess import postprocess_masks
from pipeline.inference.review import ReviewSpec, review_reason, review_signal
from pipeline.inference.runtime import (ModelChoice, PrecisionError, choose_model, cpu_flags, file_sha256, inexact_reason,
                                        int8_exact, int8_kernels, physical_cores, weight_bits)
from pipeline.inference.session_cache import cached_graph

log = logging.getLogger(__name__)

INTRA_OP_SPINNING = "session.intra_op.allow_spinning"
"""ONNX Runtime's session setting: "1" (its default) lets the intra-op threads spin between operators, "0" not."""

SMALL_GLAND_REMOVED = "no gland: the one found was too small to be one (inference.postprocess.min_organ)"
"""The review reason of a frame whose only gland the post-processing removed as too small."""


class ModelLoadError(ValueError):
    """The model file is missing, not ONNX, or lacks the contract; the message names the file."""


def open_session(path: Path, threads: int | None, cache_dir: Path | None,
                 spinning: bool = True) -> tuple[ort.InferenceSession, ModelContract]:
    """An ONNX Runtime session of ``path`` and its contract; with ``cache_dir``, through its optimised graph there.

    ``threads`` and ``spinning``: see :func:`session_options`.

    The optimised graph (:func:`pipeline.inference.session_cache.cached_graph`) is opened with
    the optimisations off when it exists; otherwise the model is optimised and the graph saved
    (under a temporary name, then renamed: two processes never read a half-written file). A
    cache that cannot be read or written is skipped, never an error.

    Raises:
        ModelLoadError: not ONNX, or no valid contract in its metadata.
    """
    cached = None if cache_dir is None else cached_graph(cache_dir, path)
    session = None
    if cached is not None and cached.is_file():
        options = session_options(threads, spinning=spinning)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # optimised already
        try:
            session = ort.InferenceSession(str(cached), options, providers=["CPUExecutionProvider"])
        except Exception:  # a damaged cache file: optimise the model again
            log.warning("ignoring an unreadable optimised-graph cache file %s", cached)
    if session is None:
        partial = None
        if cached is not None:
            try:
                cached.parent.mkdir(parents=True, exist_ok=True)
                partial = cached.with_name(f"{cached.stem}.{os.getpid()}.partial.onnx")
            except OSError:
                log.warning("cannot create the optimised-graph cache folder %s", cached.parent)
        try:
            session = ort.InferenceSession(str(path), session_options(threads, partial, spinning),
                                           providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped exceptions
            first_line = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
            raise ModelLoadError(f"{path}: not a valid ONNX model ({first_line.strip()})") from error
        finally:
            if partial is not None and partial.is_file():
                try:
                    os.replace(partial, cached)  # type: ignore[arg-type]
                except OSError:
                    partial.unlink(missing_ok=True)
    metadata = session.get_modelmeta().custom_metadata_map
    if CONTRACT_KEY not in metadata:
        raise ModelLoadError(f"{path}: the model has no '{CONTRACT_KEY}' metadata; export it with the pipeline")
    try:
        return session, ModelContract.from_json(metadata[CONTRACT_KEY])
    except ContractError as error:
        raise ModelLoadError(f"{path}: {error}") from error


def _made_from(contract: ModelContract, float_model: Path) -> bool:
    """Whether a quantised model's contract names ``float_model`` (by its SHA-256) as its source."""
    return contract.quantization is not None and contract.quantization["source_sha256"] == file_sha256(float_model)


@dataclass(frozen=True)
class Segmentation:
    """A frame's segmentation.

    Attributes:
        probabilities: (C, H, W) float32 in [0, 1] at the original frame size.
        geometry: how the frame was cropped and resized for the network.
        classes: the C class names.
        postprocess: the model's post-processing (its contract's), applied by :meth:`masks`.
        plane_probabilities: plane name -> probability in [0, 1] (they sum to 1), in the order
            of the contract's ``plane_classes``; None for a model without a plane output.
        review: the contract's calibrated review threshold (:meth:`review_reason`), or None.
    """

    probabilities: np.ndarray
    geometry: FrameGeometry
    classes: tuple[str, ...]
    postprocess: PostprocessSpec = NO_POSTPROCESS
    plane_probabilities: dict[str, float] | None = None
    review: ReviewSpec | None = None

    @property
    def plane(self) -> str | None:
        """The most probable plane (the first on a tie), or None without a plane output."""
        if self.plane_probabilities is None:
            return None
        return max(self.plane_probabilities, key=self.plane_probabilities.__getitem__)

    def masks(self, threshold: float) -> np.ndarray:
        """The frame's masks as the model was validated and evaluated.

        Args:
            threshold: probability threshold in (0, 1).

        Returns:
            (C, H, W) bool: probability strictly above ``threshold``, then :attr:`postprocess`
            (:func:`pipeline.inference.postprocess.postprocess_masks`).
        """
        return postprocess_masks(self.probabilities > threshold, self.classes, self.postprocess,
                                 self.geometry.input_area_px)

    def review_reason(self, threshold: float) -> str | None:
        """Why a person should review this frame's gland, or None (:mod:`pipeline.inference.review`, with the
        contract's calibrated ``review``); None for a model without a ``gland`` class. A gland the
        post-processing removed as too small (``min_organ``) is flagged as such: the masks show none."""
        if GLAND_CLASS not in self.classes:
            return None
        gland = self.classes.index(GLAND_CLASS)
        signal = review_signal(self.probabilities[gland], threshold)
        if signal.pieces and self.postprocess.organ == GLAND_CLASS and self.postprocess.min_organ > 0 \
                and not self.masks(threshold)[gland].any():
            return SMALL_GLAND_REMOVED
        return review_reason(signal, self.review)


@dataclass(frozen=True)
class PreparedFrame:
    """A frame ready for the network (:meth:`Segmenter.prepare`).

    Attributes:
        image: (size, size) uint8, the preprocessed frame.
        geometry: how the frame was cropped and resized, to map the output back.
    """

    image: np.ndarray
    geometry: FrameGeometry


def session_options(threads: int | None = None, optimized_cache: Path | None = None,
                    spinning: bool = True) -> ort.SessionOptions:
    """ONNX Runtime's options for the product's models (figures: README "Inference speed").

    Args:
        threads: intra-op threads; None: the physical cores (:func:`physical_cores`).
        optimized_cache: where ONNX Runtime saves the graph it optimised (loaded as is
            the next time by :func:`open_session`), or None.
        spinning: whether the intra-op threads spin between operators, waiting for work
            (ONNX Runtime's default). It makes one frame faster when nothing else runs; it
            takes the cores from threads working beside the network (``trus segment``'s
            pipeline turns it off).

    Returns:
        All graph optimisations on, sequential execution (the graph is a chain: parallel
        branches gain nothing), ``threads`` intra-op threads, warnings only.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = physical_cores() if threads is None else threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry(INTRA_OP_SPINNING, "0")
    if optimized_cache is not None:
        options.optimized_model_filepath = str(optimized_cache)
    return options


class Segmenter:
    """Runs an exported model on frames; thread-safe for concurrent ``segment`` calls."""

    def __init__(self, model_path: Path | str, threads: int | None = None, precision: str = "auto",
                 cache_dir: Path | None = None, kernels: str | None = None, spinning: bool = True) -> None:
        """Loads the model (or its INT8 companion, :func:`pipeline.inference.runtime.choose_model`) and its contract.

        Args:
            model_path: an ONNX file written by the export stage (the float model; a
                quantised file given directly runs as it is).
            threads: ONNX Runtime intra-op threads (None: the physical cores; 0: ONNX
                Runtime's own choice).
            precision: ``auto`` (the INT8 model beside ``model_path`` when this CPU runs
                it fast and exactly), ``int8`` or ``fp32``.
            cache_dir: a folder for ONNX Runtime's optimised graphs
                (:mod:`pipeline.inference.session_cache`), or None for no cache.
            kernels: what this CPU's 8-bit kernels use, one of
                :data:`pipeline.inference.runtime.INT8_KERNELS`; None: detect it.
            spinning: whether ONNX Runtime's threads spin between operators (:func:`session_options`).

        Raises:
            ModelLoadError: missing file, not ONNX, no valid contract, ``int8`` requested
                without an INT8 model made from this one or with one that cannot be loaded (the
                message names the file), or an INT8 model (requested, or the file given) that this
                CPU would compute wrongly (8-bit weights without VNNI,
                :func:`pipeline.inference.runtime.int8_exact`). With ``auto``, an INT8 model beside
                it that cannot be loaded (damaged, not ONNX, no contract) or is not exact here is
                not an error: the float model runs, ``choice.reason`` says why, and a warning is logged.
        """
        self.requested_path = Path(model_path)
        if not self.requested_path.is_file():
            raise ModelLoadError(f"{self.requested_path}: no such model file")
        kernels = int8_kernels(cpu_flags()) if kernels is None else kernels
        try:
            choice = choose_model(self.requested_path, precision, kernels)
        except PrecisionError as error:
            raise ModelLoadError(str(error)) from error
        try:
            session, contract = open_session(choice.path, threads, cache_dir, spinning)
        except ModelLoadError as error:
            if choice.path == self.requested_path or precision == "int8":
                raise
            # auto: a damaged INT8 file beside the float model must not stop the float model from running
            why = str(error).removeprefix(f"{choice.path}: ")
            log.warning("the INT8 model %s cannot be loaded (%s); running the fp32 model %s", choice.path, why,
                        self.requested_path)
            choice = ModelChoice(self.requested_path, "fp32",
                                 f"fp32: the INT8 model beside it ({choice.path.name}) cannot be loaded ({why})")
            session, contract = open_session(choice.path, threads, cache_dir, spinning)
        if choice.path != self.requested_path and not _made_from(contract, self.requested_path):
            if precision == "int8":
                raise ModelLoadError(f"{choice.path}: this INT8 model was made from another model than "
                                     f"{self.requested_path}; export again")
            choice = ModelChoice(self.requested_path, "fp32",
                                 f"fp32: the INT8 model beside it ({choice.path.name}) was made from another model")
            session, contract = open_session(choice.path, threads, cache_dir, spinning)
        if choice.path == self.requested_path and contract.quantization is not None:
            choice = ModelChoice(choice.path, "int8", "INT8: the model file given is quantised")
        if contract.quantization is not None and not int8_exact(kernels, bits := weight_bits(contract.quantization)):
            why = inexact_reason(kernels, bits)
            if choice.path == self.requested_path or precision == "int8":
                raise ModelLoadError(f"{choice.path}: {why}")
            log.warning("not running the INT8 model %s: %s", choice.path, why)
            choice = ModelChoice(self.requested_path, "fp32", f"fp32: the INT8 model beside it ({choice.path.name}) "
                                                              f"has {bits}-bit weights, inexact without VNNI")
            session, contract = open_session(choice.path, threads, cache_dir, spinning)
        self.path, self.choice, self.contract, self._session = choice.path, choice, contract, session
        self._input_name = session.get_inputs()[0].name
        self._output_names = [session.get_outputs()[0].name]
        if contract.plane_classes is not None:
            if PLANE_OUTPUT_NAME not in {output.name for output in session.get_outputs()}:
                raise ModelLoadError(f"{self.path}: the contract names plane classes but the model has no "
                                     f"'{PLANE_OUTPUT_NAME}' output")
            self._output_names.append(PLANE_OUTPUT_NAME)

    @property
    def precision(self) -> str:
        """``int8`` or ``fp32``: the model that runs."""
        return self.choice.precision

    @property
    def classes(self) -> tuple[str, ...]:
        """Output class names."""
        return self.contract.classes

    def predict_processed(self, images: np.ndarray) -> np.ndarray:
        """The class probabilities inference uses on already preprocessed frames (the contract's flips included).

        Args:
            images: (N, size, size) or (size, size) uint8 from ``preprocess_frame``.

        Returns:
            (N, C, size, size) float32 probabilities in [0, 1].
        """
        return self.run_flipped(images)[0]

    def run_flipped(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`run_processed` averaged over the contract's test-time flips (:mod:`pipeline.inference.flips`).

        Args:
            images: (N, size, size) uint8 from ``preprocess_frame``.

        Returns:
            As :meth:`run_processed`; with ``flips: none`` exactly its outputs (one pass).
        """
        return mirrored_mean(self.run_processed, images, self.contract.flips)

    def run_processed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Runs the network once on already preprocessed frames: both outputs, no test-time flips.

        Args:
            images: (N, size, size) or (size, size) uint8 from ``preprocess_frame``.

        Returns:
            (N, C, size, size) float32 probabilities in [0, 1], and (N, K) float32 plane
            probabilities (columns: the contract's ``plane_classes``), None without a plane output.
        """
        tensor = network_input(images, self.contract.mean, self.contract.std)
        outputs = self._session.run(self._output_names, {self._input_name: tensor})
        return outputs[0], outputs[1] if len(outputs) > 1 else None

    def segment(self, gray: np.ndarray, region_box: tuple[int, int, int, int] | None = None) -> Segmentation:
        """Segments one frame.

        Args:
            gray: (H, W) uint8 grey frame at its original size.
            region_box: the frame's DICOM ultrasound region (``Frame.region_box``), for
                ``crop: dicom`` models; None for frames without one.

        Returns:
            Probabilities mapped back onto the original (H, W) frame, and the plane
            probabilities when the model has a plane output.
        """
        return self.segment_prepared(self.prepare(gray, region_box))

    def prepare(self, gray: np.ndarray, region_box: tuple[int, int, int, int] | None = None,
                fan: Fan | None = None) -> PreparedFrame:
        """The first half of :meth:`segment`: the model's preprocessing of one frame (no network).

        Args:
            gray: (H, W) uint8 grey frame at its original size.
            region_box: the frame's DICOM ultrasound region, or None.
            fan: the frame's fan when already detected, or None.
        """
        processed = preprocess_frame(gray, self.contract.preprocess, region_box=region_box, fan=fan)
        return PreparedFrame(processed.image, processed.geometry)

    def segment_prepared(self, prepared: PreparedFrame) -> Segmentation:
        """The second half of :meth:`segment`: the network on a :meth:`prepare`d frame, mapped back onto it."""
        probabilities, planes = self.run_flipped(prepared.image[None])  # (1, C, S, S), (1, K) or None
        plane = None if planes is None else dict(zip(self.contract.plane_classes or (), map(float, planes[0])))
        return Segmentation(probabilities_to_original_frame(probabilities[0], prepared.geometry), prepared.geometry,
                            self.classes, self.contract.postprocess, plane, self.contract.review)
