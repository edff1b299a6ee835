import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.config import Params, ParamsError, load_params
from tests.conftest import PROJECT_ROOT


def committed_params(tmp_path: Path) -> Path:
    """The committed params.yaml (`make demo` leaves the demo experiment's values in the working tree)."""
    shown = subprocess.run(["git", "show", "HEAD:params.yaml"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    path = tmp_path / "params.yaml"
    path.write_text(shown.stdout if shown.returncode == 0 else (PROJECT_ROOT / "params.yaml").read_text())
    return path


def test_project_params_are_the_product_defaults(tmp_path: Path):
    params = load_params(committed_params(tmp_path))
    assert (params.model.arch, params.model.encoder, params.model.encoder_weights) == ("FPN", "resnet152", "imagenet")
    assert params.preprocess.size == 768
    assert params.data.classes == ("gland", "lesion")
    assert params.preprocess.filter.method in ("isotropic", "perona_malik")


def test_params_yaml_matches_dataclass_defaults(tmp_path: Path):
    # params.yaml is the one source of truth; the dataclass defaults must not drift from it.
    assert load_params(committed_params(tmp_path)) == Params()


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("train", "epochs", 0, "train.epochs"),
        ("train", "device", "tpu", "train.device"),
        ("train", "typo_key", 1, "unknown key(s) in params.train: typo_key"),
        ("preprocess", "resize", "squash", "preprocess.resize"),
        ("preprocess", "crop", "box", "crop_box"),
        ("split", "fractions", [0.5, 0.5, 0.5], "split.fractions"),
        ("inference", "threshold", 1.5, "inference.threshold"),
        ("data", "patient_pattern", "^(.*)_", "(?P<patient>"),
        ("model", "plane_head", "yes", "model.plane_head must be auto, true or false"),
        ("train", "plane_weight", -0.1, "train.plane_weight must be a number >= 0"),
        ("train", "plane_weight", None, "train.plane_weight must be a number >= 0"),
    ],
)
def test_bad_values_are_rejected_with_file_and_key(tmp_path: Path, section, key, value, message):
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    raw[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError) as error:
        load_params(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


def test_nested_filter_values_are_typed(tmp_path: Path):
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    raw["preprocess"]["filter"]["gamma"] = 0.5
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match="gamma"):
        load_params(path)


def test_missing_file_names_it(tmp_path: Path):
    with pytest.raises(ParamsError, match="nope.yaml"):
        load_params(tmp_path / "nope.yaml")
