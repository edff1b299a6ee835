"""ONNX Runtime predictor: original frame in, per-class probabilities at the frame's size out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from pipeline.imaging.geometry import FrameGeometry, probabilities_to_original_frame
from pipeline.imaging.preprocessing import network_input, preprocess_frame
from pipeline.inference.contract import CONTRACT_KEY, NO_POSTPROCESS, ContractError, ModelContract, PostprocessSpec
from pipeline.inference.postprocess import postprocess_masks


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
    """

    probabilities: np.ndarray
    geometry: FrameGeometry
    classes: tuple[str, ...]
    postprocess: PostprocessSpec = NO_POSTPROCESS

    def masks(self, threshold: float) -> np.ndarray:
        """The frame's masks as the model was validated and evaluated.

        Args:
            threshold: probability threshold in (0, 1).

        Returns:
            (C, H, W) bool: probability strictly above ``threshold``, then :attr:`postprocess`
            (:func:`pipeline.inference.postprocess.postprocess_masks`).
        """
        return postprocess_masks(self.probabilities > threshold, self.classes, self.postprocess)


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
        tensor = network_input(images, self.contract.mean, self.contract.std)
        return self._session.run(None, {self._input_name: tensor})[0]

    def segment(self, gray: np.ndarray, region_box: tuple[int, int, int, int] | None = None) -> Segmentation:
        """Segments one frame.

        Args:
            gray: (H, W) uint8 grey frame at its original size.
            region_box: the frame's DICOM ultrasound region (``Frame.region_box``), for
                ``crop: dicom`` models; None for frames without one.

        Returns:
            Probabilities mapped back onto the original (H, W) frame.
        """
        processed = preprocess_frame(gray, self.contract.preprocess, region_box=region_box)
        probabilities = self.predict_processed(processed.image)[0]  # (C, S, S)
        return Segmentation(probabilities_to_original_frame(probabilities, processed.geometry), processed.geometry,
                            self.classes, self.contract.postprocess)
