"""ONNX Runtime predictor: original frame in, per-class probabilities at the frame's size out.

A model whose contract names ``plane_classes`` also gives the frame's plane probabilities
(its ``plane`` output, :class:`Segmentation.plane_probabilities`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.imaging.geometry import FrameGeometry, probabilities_to_original_frame
from pipeline.imaging.preprocessing import network_input, preprocess_frame
from pipeline.inference.contract import (CONTRACT_KEY, NO_POSTPROCESS, PLANE_OUTPUT_NAME, ContractError, ModelContract,
                                        PostprocessSpec)
from pipeline.inference.gland_size import GLAND_CLASS
from pipeline.inference.postprocess import postprocess_masks
from pipeline.inference.review import ReviewSpec, review_reason, review_signal


class ModelLoadError(ValueError):
    """The model file is missing, not ONNX, or lacks the contract; the message names the file."""


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
        return postprocess_masks(self.probabilities > threshold, self.classes, self.postprocess)

    def review_reason(self, threshold: float) -> str | None:
        """Why a person should review this frame's gland, or None (:mod:`pipeline.inference.review`, with the
        contract's calibrated ``review``); None for a model without a ``gland`` class."""
        if GLAND_CLASS not in self.classes:
            return None
        signal = review_signal(self.probabilities[self.classes.index(GLAND_CLASS)], threshold)
        return review_reason(signal, self.review)


class Segmenter:
    """Runs an exported model on frames; thread-safe for concurrent ``segment`` calls."""

    def __init__(self, model_path: Path | str, threads: int = 0) -> None:
        """Loads the model and its contract.

        Args:
            model_path: an ONNX file written by the export stage.
            threads: ONNX Runtime intra-op threads (0 = all cores).

        Raises:
            ModelLoadError: missing file, not ONNX, or no valid contract in its metadata.
        """
        self.path = Path(model_path)
        if not self.path.is_file():
            raise ModelLoadError(f"{self.path}: no such model file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped exceptions
            raise ModelLoadError(f"{self.path}: not a valid ONNX model ({str(error).splitlines()[0]})") from error
        metadata = self._session.get_modelmeta().custom_metadata_map
        if CONTRACT_KEY not in metadata:
            raise ModelLoadError(f"{self.path}: the model has no '{CONTRACT_KEY}' metadata; export it with the pipeline")
        try:
            self.contract = ModelContract.from_json(metadata[CONTRACT_KEY])
        except ContractError as error:
            raise ModelLoadError(f"{self.path}: {error}") from error
        self._input_name = self._session.get_inputs()[0].name
        self._output_names = [self._session.get_outputs()[0].name]
        if self.contract.plane_classes is not None:
            if PLANE_OUTPUT_NAME not in {output.name for output in self._session.get_outputs()}:
                raise ModelLoadError(f"{self.path}: the contract names plane classes but the model has no "
                                     f"'{PLANE_OUTPUT_NAME}' output")
            self._output_names.append(PLANE_OUTPUT_NAME)

    @property
    def classes(self) -> tuple[str, ...]:
        """Output class names."""
        return self.contract.classes

    def predict_processed(self, images: np.ndarray) -> np.ndarray:
        """Runs the network on already preprocessed frames.

        Args:
            images: (N, size, size) or (size, size) uint8 from ``preprocess_frame``.

        Returns:
            (N, C, size, size) float32 probabilities in [0, 1].
        """
        return self.run_processed(images)[0]

    def run_processed(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Runs the network on already preprocessed frames: both outputs.

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
        processed = preprocess_frame(gray, self.contract.preprocess, region_box=region_box)
        probabilities, planes = self.run_processed(processed.image)  # (1, C, S, S), (1, K) or None
        plane = None if planes is None else dict(zip(self.contract.plane_classes or (), map(float, planes[0])))
        return Segmentation(probabilities_to_original_frame(probabilities[0], processed.geometry), processed.geometry,
                            self.classes, self.contract.postprocess, plane, self.contract.review)
