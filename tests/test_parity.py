"""The app's input tensor equals the pipeline's for the same frame, exactly.

Pipeline side: the real pull and preprocess stages on a Roboflow-style export, then the
tensor the training/validation dataset feeds the network (the evaluation and export
parity check use the same ``network_input``). App side: the real window opens the
export's original JPEG, and the tensor its ONNX Runtime session receives is recorded.
"""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from app.main_window import MainWindow
from app.settings import AppSettings
from pipeline.config import load_params
from pipeline.inference.predictor import Segmenter
from pipeline.synthetic import SampleSpec, write_sample_export
from pipeline.training.data import FrameDataset, load_frames
from tests.test_stages import run_stage, small_params
from tests.tiny_models import tiny_contract, write_threshold_model


class RecordingSession:
    """Wraps an ONNX Runtime session and keeps a copy of every input tensor it is given."""

    def __init__(self, session) -> None:
        self.session, self.inputs = session, []

    def run(self, output_names, feeds):
        self.inputs.extend(np.array(value, copy=True) for value in feeds.values())
        return self.session.run(output_names, feeds)


@pytest.mark.parametrize("filter_method", ["perona_malik", "isotropic"])
def test_app_input_tensor_equals_the_pipelines(tmp_path: Path, qtbot, filter_method: str):
    write_sample_export(tmp_path / "data", seed=11, spec=SampleSpec(n_patients=2, frames_per_patient=2,
                                                                   frame_width=320, frame_height=240))
    params = small_params()
    params["preprocess"].update(size=96, crop="auto", resize="letterbox",
                                filter={**params["preprocess"]["filter"], "method": filter_method})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in ("pull", "preprocess"):
        result = run_stage(stage, tmp_path)
        assert result.returncode == 0, result.stderr
    loaded = load_params(tmp_path / "params.yaml")
    frames = pd.read_csv(tmp_path / "artifacts/processed/frames.csv", dtype={"frame_id": str})
    row = frames.iloc[0]
    images, masks = load_frames(tmp_path / "artifacts/processed", [row.frame_id], loaded.preprocess.size)
    pipeline_tensor = FrameDataset(images, masks, 2, loaded.model.mean, loaded.model.std)[0][0].numpy()

    contract = dataclasses.replace(tiny_contract(loaded.preprocess), mean=loaded.model.mean, std=loaded.model.std)
    segmenter = Segmenter(write_threshold_model(tmp_path / "model.onnx", contract))
    recorder = RecordingSession(segmenter._session)
    segmenter._session = recorder
    window = MainWindow(report_error=pytest.fail, settings=AppSettings(tmp_path / "settings.ini"))
    qtbot.addWidget(window)
    window.use_segmenter(segmenter)
    window.load_frame(tmp_path / "data" / row.export_split / row.export_file)  # the original export JPEG
    qtbot.waitUntil(lambda: not window.worker.busy and window.session.segmentation is not None, timeout=10000)

    assert len(recorder.inputs) == 1 and recorder.inputs[0].shape == (1, 1, 96, 96)
    assert recorder.inputs[0].dtype == pipeline_tensor.dtype == np.float32
    np.testing.assert_array_equal(recorder.inputs[0][0], pipeline_tensor)
    geometry = window.session.segmentation.geometry
    assert (geometry.crop_x, geometry.crop_y, geometry.crop_width, geometry.crop_height) == \
        (row.crop_x, row.crop_y, row.crop_width, row.crop_height)
