"""Which model runs (INT8 or fp32), ONNX Runtime's session options and its optimised-graph cache."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app as cli
from pipeline.imaging.png import write_png_atomically
from pipeline.inference.predictor import INTRA_OP_SPINNING, ModelLoadError, Segmenter, session_options
from pipeline.inference.runtime import (PrecisionError, choose_model, cpu_flags, file_sha256, has_int8_dot_product,
                                        int8_candidates, int8_exact, int8_kernels, physical_cores, weight_bits)
from pipeline.inference.session_cache import CACHE_ENV, cached_graph, default_cache_dir
from pipeline.training.int8_export import write_contract
from tests.tiny_models import tiny_contract, write_threshold_model, write_two_layer_model


def quantised_beside(float_model: Path, where: str = "beside", source: Path | None = None,
                     bits: int | None = 7) -> Path:
    """A stand-in INT8 model of ``float_model`` (the two-layer model, its contract naming ``source``'s SHA-256 and
    ``bits``-bit weights; None: a contract from before the weight bits were recorded)."""
    path = int8_candidates(float_model)[0 if where == "beside" else 1]
    path.parent.mkdir(exist_ok=True)
    write_two_layer_model(path)
    record = {"source_sha256": file_sha256(source or float_model), "gate": {"mask_dice": {"gland": 0.999}}}
    if bits is not None:
        record["weight_bits"] = bits
    write_contract(path, replace(tiny_contract(), quantization=record))
    return path


@pytest.mark.parametrize("int8, precision, kernels, expected_file, expected_precision, reason", [
    (None, "auto", "dot-product", "model.onnx", "fp32", "fp32: no INT8 model beside it"),
    ("beside", "auto", "dot-product", "model.int8.onnx", "int8", "INT8: this CPU has integer dot-product instructions"),
    ("folder", "auto", "dot-product", "int8/model.int8.onnx", "int8", "INT8: this CPU has integer dot-product"),
    ("beside", "auto", "avx2", "model.int8.onnx", "int8", "INT8: 7-bit weights, exact on this CPU's AVX2 integer"),
    ("beside", "auto", "none", "model.onnx", "fp32", "has neither integer dot-product instructions (VNNI) nor AVX2"),
    ("beside", "fp32", "dot-product", "model.onnx", "fp32", "fp32: chosen in the settings"),
    ("beside", "int8", "none", "model.int8.onnx", "int8", "INT8: chosen in the settings"),
])
def test_choose_model(tmp_path, int8, precision, kernels, expected_file, expected_precision, reason):
    model = write_threshold_model(tmp_path / "model.onnx")
    if int8 is not None:
        quantised_beside(model, int8)
    choice = choose_model(model, precision, kernels=kernels)
    assert choice.path == tmp_path / expected_file and choice.precision == expected_precision
    assert reason in choice.reason


def test_choose_model_refuses_int8_without_an_int8_model_and_unknown_precisions(tmp_path):
    model = write_threshold_model(tmp_path / "model.onnx")
    with pytest.raises(PrecisionError, match=r"model.onnx: no INT8 model beside it \(.*model.int8.onnx or "):
        choose_model(model, "int8")
    with pytest.raises(ValueError, match="precision must be one of auto, int8, fp32"):
        choose_model(model, "fp16")
    with pytest.raises(ValueError, match="kernels must be one of dot-product, avx2, none"):
        choose_model(model, "auto", "sse")


@pytest.mark.parametrize("flags, fast, kernels", [
    ({"sse4_2", "avx2", "avx512f"}, False, "avx2"),   # Skylake-SP: AVX-512 without VNNI
    ({"fma", "avx", "avx2"}, False, "avx2"),           # AMD Zen 3, Intel Haswell to Comet Lake
    ({"avx2", "avx512_vnni"}, True, "dot-product"),
    ({"avx2", "avx_vnni"}, True, "dot-product"),       # Alder Lake and later desktops: VNNI without AVX-512
    ({"amx_int8"}, True, "dot-product"),
    ({"fp", "asimd", "asimddp"}, True, "dot-product"),  # ARM with the dot-product extension
    ({"fp", "asimd"}, False, "none"),
    ({"sse4_2", "avx"}, False, "none"),
    (set(), False, "none"),
])
def test_int8_kernel_detection(flags, fast, kernels):
    assert has_int8_dot_product(frozenset(flags)) is fast
    assert int8_kernels(frozenset(flags)) == kernels


@pytest.mark.parametrize("kernels, bits, exact", [
    ("dot-product", 8, True), ("dot-product", 7, True),
    ("avx2", 8, False), ("avx2", 7, True),
    ("none", 8, True), ("none", 7, True),
])
def test_int8_exact_only_excludes_8_bit_weights_on_avx2(kernels, bits, exact):
    assert int8_exact(kernels, bits) is exact


@pytest.mark.parametrize("record, bits", [
    ({"weight_bits": 7}, 7), ({"weight_bits": 8}, 8),
    ({}, 8),                     # exported before the bits were recorded: 8-bit weights
    ({"weight_bits": "7"}, 8), ({"weight_bits": True}, 8),
])
def test_weight_bits_of_a_contract(record, bits):
    assert weight_bits(record) == bits


@pytest.mark.parametrize("kernels, bits, precision, expected, reason", [
    ("avx2", 7, "auto", "int8", "INT8: 7-bit weights, exact on this CPU's AVX2 integer kernels (it lacks VNNI)"),
    ("avx2", 8, "auto", "fp32", "fp32: the INT8 model beside it (model.int8.onnx) has 8-bit weights, inexact without VNNI"),
    ("avx2", None, "auto", "fp32", "fp32: the INT8 model beside it (model.int8.onnx) has 8-bit weights, inexact"),
    ("avx2", 8, "int8", "error", "model.int8.onnx: its 8-bit weights overflow the 16-bit sums of this CPU's AVX2"),
    ("avx2", 8, "fp32", "fp32", "fp32: chosen in the settings"),
    ("dot-product", 8, "auto", "int8", "INT8: this CPU has integer dot-product instructions (VNNI)"),
    ("dot-product", 8, "int8", "int8", "INT8: chosen in the settings"),
])
def test_segmenter_runs_an_int8_model_only_where_its_sums_are_exact(tmp_path, caplog, kernels, bits, precision,
                                                                     expected, reason):
    model = write_threshold_model(tmp_path / "model.onnx")
    quantised_beside(model, bits=bits)
    if expected == "error":
        with pytest.raises(ModelLoadError, match=reason) as raised:
            Segmenter(model, precision=precision, kernels=kernels)
        assert "export.int8.weight_bits: 7" in str(raised.value) and "\n" not in str(raised.value)
        return
    with caplog.at_level(logging.WARNING, logger="pipeline.inference.predictor"):
        segmenter = Segmenter(model, precision=precision, kernels=kernels)
    assert segmenter.precision == expected and segmenter.choice.reason.startswith(reason)
    assert segmenter.path == (model if expected == "fp32" else int8_candidates(model)[0])
    assert ("overflow the 16-bit sums" in caplog.text) is (expected == "fp32" and precision == "auto")


def test_an_8_bit_int8_file_given_directly_is_refused_on_avx2(tmp_path):
    int8 = quantised_beside(write_threshold_model(tmp_path / "model.onnx"), bits=8)
    with pytest.raises(ModelLoadError, match=r"model.int8.onnx: its 8-bit weights overflow"):
        Segmenter(int8, kernels="avx2")
    assert Segmenter(quantised_beside(tmp_path / "model.onnx", bits=7), kernels="avx2").precision == "int8"


def test_cpu_flags_reads_x86_flags_and_arm_features(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu AVX2 avx512_vnni\n\nprocessor\t: 1\nFeatures\t: asimddp\n")
    assert {"fpu", "avx2", "avx512_vnni", "asimddp"} <= cpu_flags(cpuinfo)
    assert isinstance(cpu_flags(tmp_path / "missing"), frozenset)  # Windows, macOS: NumPy's detection only


def test_segmenter_runs_the_int8_model_made_from_it(tmp_path):
    model = write_threshold_model(tmp_path / "model.onnx")
    int8 = quantised_beside(model)
    segmenter = Segmenter(model, kernels="dot-product")
    assert (segmenter.path, segmenter.precision, segmenter.requested_path) == (int8, "int8", model)
    assert segmenter.contract.quantization["gate"]["mask_dice"] == {"gland": 0.999}
    assert Segmenter(model, kernels="none").precision == "fp32"
    assert Segmenter(model, precision="fp32", kernels="dot-product").path == model


def test_an_int8_model_of_another_model_is_not_used(tmp_path):
    model = write_threshold_model(tmp_path / "model.onnx")
    other = write_threshold_model(tmp_path / "other.onnx", level=0.3)
    quantised_beside(model, source=other)  # left over from an earlier export
    segmenter = Segmenter(model, kernels="dot-product")
    assert segmenter.path == model and segmenter.precision == "fp32"
    assert segmenter.choice.reason == "fp32: the INT8 model beside it (model.int8.onnx) was made from another model"
    with pytest.raises(ModelLoadError, match="model.int8.onnx: this INT8 model was made from another model than"):
        Segmenter(model, precision="int8")


def test_a_quantised_file_given_directly_runs_as_int8(tmp_path):
    int8 = quantised_beside(write_threshold_model(tmp_path / "model.onnx"))
    segmenter = Segmenter(int8, precision="auto", kernels="none")
    assert segmenter.path == int8 and segmenter.precision == "int8"
    assert segmenter.choice.reason == "INT8: the model file given is quantised"


def _damage(path: Path, how: str) -> None:
    """Spoils an INT8 model file: cut short, not ONNX at all, a graph ONNX Runtime cannot run, or no contract."""
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif how == "not onnx":
        path.write_bytes(b"\x00" * 64)
    elif how == "no session":  # valid ONNX, but ONNX Runtime has no such operator
        import onnx
        from onnx import TensorProto, helper

        tensor = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
        graph = helper.make_graph([helper.make_node("NoSuchOperator", ["x"], ["y"], domain="no.such.domain")],
                                  "broken", [tensor], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                          helper.make_opsetid("no.such.domain", 1)]), path)
    elif how == "no contract":  # runs, but without the contract's metadata
        import onnx

        model = onnx.load(write_two_layer_model(path))
        del model.metadata_props[:]
        onnx.save(model, path)
    else:
        raise ValueError(how)


DAMAGES = ["truncated", "not onnx", "no session", "no contract"]


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("where", ["beside", "int8 folder"])
def test_auto_falls_back_to_fp32_when_the_int8_model_cannot_be_loaded(tmp_path, caplog, how, where):
    model = write_threshold_model(tmp_path / "model.onnx")
    int8 = quantised_beside(model, where)
    _damage(int8, how)
    with caplog.at_level(logging.WARNING, logger="pipeline.inference.predictor"):
        segmenter = Segmenter(model, kernels="dot-product", cache_dir=tmp_path / "cache")
    assert (segmenter.path, segmenter.precision) == (model, "fp32")
    assert segmenter.choice.reason.startswith("fp32: the INT8 model beside it (model.int8.onnx) cannot be loaded (")
    assert "\n" not in segmenter.choice.reason
    assert ("has no 'trus_contract' metadata" if how == "no contract" else "not a valid ONNX model") \
        in segmenter.choice.reason
    assert f"the INT8 model {int8} cannot be loaded" in caplog.text
    gray = np.full((40, 50), 200, np.uint8)
    np.testing.assert_array_equal(segmenter.segment(gray).probabilities,
                                  Segmenter(model, precision="fp32").segment(gray).probabilities)


@pytest.mark.parametrize("how", DAMAGES)
def test_explicit_int8_with_an_int8_model_that_cannot_be_loaded_is_a_one_line_error(tmp_path, how):
    model = write_threshold_model(tmp_path / "model.onnx")
    int8 = quantised_beside(model)
    _damage(int8, how)
    with pytest.raises(ModelLoadError) as raised:
        Segmenter(model, precision="int8", kernels="dot-product")
    message = str(raised.value)
    assert message.startswith(f"{int8}: ") and "\n" not in message


def test_cli_precision_int8_with_a_damaged_int8_model_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    model = write_threshold_model(tmp_path / "model.onnx")
    _damage(quantised_beside(model), "truncated")
    frame = tmp_path / "frame.png"
    write_png_atomically(frame, np.full((40, 40), 200, np.uint8))
    result = CliRunner().invoke(cli, ["segment", str(frame), "--model", str(model), "--precision", "int8",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "model.int8.onnx: not a valid ONNX model" in result.output
    assert not (tmp_path / "out").exists()


def test_session_options_use_the_physical_cores_and_all_optimisations():
    options = session_options()
    assert options.intra_op_num_threads == physical_cores() >= 1
    assert options.graph_optimization_level.name == "ORT_ENABLE_ALL"
    assert session_options(threads=1).intra_op_num_threads == 1
    assert physical_cores() <= (os.cpu_count() or 1)


@pytest.mark.parametrize("cached", [False, True])
def test_spinning_can_be_turned_off_and_changes_no_result(tmp_path, cached):
    """ONNX Runtime's intra-op threads spin by default; ``spinning=False`` (trus segment's pipeline) turns it off."""
    with pytest.raises(RuntimeError, match="does not have configuration"):  # unset: ONNX Runtime's default, spin
        session_options().get_session_config_entry(INTRA_OP_SPINNING)
    assert session_options(spinning=False).get_session_config_entry(INTRA_OP_SPINNING) == "0"
    model = write_two_layer_model(tmp_path / "model.onnx")
    cache = tmp_path / "cache" if cached else None
    if cached:
        Segmenter(model, cache_dir=cache)  # writes the optimised graph; the next session opens it
    quiet = Segmenter(model, threads=2, cache_dir=cache, spinning=False)
    options = quiet._session.get_session_options()
    assert options.get_session_config_entry(INTRA_OP_SPINNING) == "0" and options.intra_op_num_threads == 2
    gray = (np.random.default_rng(1).random((40, 50)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(quiet.segment(gray).probabilities, Segmenter(model).segment(gray).probabilities)


def test_the_optimised_graph_is_cached_and_gives_the_same_result(tmp_path):
    model = write_two_layer_model(tmp_path / "model.onnx")
    cache = tmp_path / "cache"
    gray = (np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)
    first = Segmenter(model, cache_dir=cache)
    cached = cached_graph(cache, model)
    assert cached.is_file() and list(cache.iterdir()) == [cached]  # no partial file left
    second = Segmenter(model, cache_dir=cache)
    assert second.contract == first.contract
    np.testing.assert_array_equal(second.segment(gray).probabilities, first.segment(gray).probabilities)
    np.testing.assert_array_equal(Segmenter(model).segment(gray).probabilities, first.segment(gray).probabilities)


def test_a_new_model_file_gets_a_new_cache_entry_and_a_damaged_one_is_skipped(tmp_path, caplog):
    model = write_two_layer_model(tmp_path / "model.onnx")
    cache = tmp_path / "cache"
    before = cached_graph(cache, model)
    shutil.copy(write_threshold_model(tmp_path / "other.onnx"), model)
    os.utime(model, ns=(1, 1))
    assert cached_graph(cache, model) != before
    cache.mkdir()
    cached_graph(cache, model).write_bytes(b"not onnx")
    segmenter = Segmenter(model, cache_dir=cache)
    assert segmenter.contract.arch == "tiny-threshold"
    assert "ignoring an unreadable optimised-graph cache file" in caplog.text


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "shared"))
    assert default_cache_dir() == tmp_path / "shared"
    monkeypatch.delenv(CACHE_ENV)
    assert default_cache_dir().name == "onnxruntime"


@pytest.mark.parametrize("command", ["segment", "measure"])
def test_cli_precision_int8_without_an_int8_model_is_a_one_line_error(tmp_path, monkeypatch, command):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    model = write_threshold_model(tmp_path / "model.onnx")
    frame = tmp_path / "frame.png"
    import cv2

    cv2.imwrite(str(frame), np.full((40, 40), 200, np.uint8))
    arguments = [str(frame)] if command == "segment" else [str(frame), str(frame)]
    result = CliRunner().invoke(cli, [command, *arguments, "--model", str(model), "--precision", "int8",
                                      *(["--out", str(tmp_path / "out")] if command == "segment" else [])])
    assert result.exit_code == 2
    assert "model.onnx: no INT8 model beside it" in result.output
    assert not (tmp_path / "out").exists()
