import json
import logging

import pandas as pd
import pytest

from pipeline.config import SplitParams
from pipeline.stages.split import summary_lines
from pipeline.splitting import SUBSETS, frames_by_subset, make_split, split_patients
from pipeline.stages.train import training_ids

PATIENTS = [f"P{i:03d}" for i in range(24)]


@pytest.mark.parametrize("seed", [0, 1, 42])
@pytest.mark.parametrize("fractions, sizes", [((0.7, 0.15, 0.15), (16, 4, 4)), ((0.8, 0.0, 0.2), (19, 0, 5)),
                                              ((0.34, 0.33, 0.33), (8, 8, 8))])
def test_patients_are_partitioned(seed, fractions, sizes):
    split = split_patients(PATIENTS * 3, fractions, seed)  # repeated keys = several frames each
    assert tuple(len(split[name]) for name in SUBSETS) == sizes
    assert sorted(sum(split.values(), [])) == PATIENTS  # every patient exactly once


def test_same_seed_same_split_other_seed_other_split():
    assert split_patients(PATIENTS, (0.7, 0.15, 0.15), 3) == split_patients(list(reversed(PATIENTS)), (0.7, 0.15, 0.15), 3)
    assert split_patients(PATIENTS, (0.7, 0.15, 0.15), 3) != split_patients(PATIENTS, (0.7, 0.15, 0.15), 4)


def test_small_cohort_still_fills_every_subset():
    split = split_patients(["A", "B", "C"], (0.9, 0.05, 0.05), 0)
    assert [len(split[n]) for n in SUBSETS] == [1, 1, 1]
    with pytest.raises(ValueError, match="2 patient\\(s\\) cannot fill 3"):
        split_patients(["A", "B"], (0.9, 0.05, 0.05), 0)


def test_frames_follow_their_patient():
    table = pd.DataFrame({"frame_id": [f"f{i}" for i in range(12)], "patient": [f"P{i % 4}" for i in range(12)]})
    split = split_patients(table["patient"], (0.5, 0.25, 0.25), 0)
    frames = frames_by_subset(table, split)
    for name in SUBSETS:
        patients = set(table.set_index("frame_id").loc[frames[name], "patient"])
        assert patients == set(split[name])
    assert sum(len(v) for v in frames.values()) == 12


# --- stratified splits, folds, Roboflow's own split, and the fold train.py trains on ---

def cohort(n_patients: int = 24, n_positive: int = 8, frames: int = 3) -> pd.DataFrame:
    """A frames table: patients P000.., the first ``n_positive`` with lesion pixels in one frame each."""
    rows = [{"frame_id": f"P{p:03d}_F{f}", "patient": f"P{p:03d}", "px_gland": 100,
             "px_lesion": 20 if p < n_positive and f == 0 else 0, "export_split": "train"}
            for p in range(n_patients) for f in range(frames)]
    return pd.DataFrame(rows)


def overlapping(sides: dict[str, list[str]]) -> set[str]:
    """Members that appear in more than one side."""
    seen = [member for side in sides.values() for member in set(side)]
    return {member for member in seen if seen.count(member) > 1}


def patients_of(table: pd.DataFrame, frame_ids: list[str]) -> set[str]:
    return set(table.set_index("frame_id").loc[frame_ids, "patient"])


def test_overlap_check_catches_a_patient_on_two_sides():
    assert overlapping({"train": ["A", "B"], "val": ["B"], "test": ["C"]}) == {"B"}


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("stratify", [None, "lesion"])
def test_no_patient_on_two_sides_in_the_split_or_any_fold(seed, stratify):
    table = cohort()
    split = make_split(table, SplitParams(seed=seed, stratify=stratify))
    assert not overlapping(split["patients"])
    assert not overlapping({name: patients_of(table, split["frames"][name]) for name in SUBSETS})
    assert sorted(sum(split["patients"].values(), [])) == sorted(table["patient"].unique())
    for fold, frames in zip(split["folds"], split["fold_frames"]):
        assert not overlapping(fold) and not overlapping({n: patients_of(table, frames[n]) for n in frames})
        assert {name: patients_of(table, frames[name]) for name in frames} == {n: set(fold[n]) for n in fold}


def test_folds_partition_the_train_and_val_patients():
    table = cohort()
    split = make_split(table, SplitParams(folds=5))
    pool = sorted(split["patients"]["train"] + split["patients"]["val"])
    vals = [fold["val"] for fold in split["folds"]]
    assert len(vals) == 5 and sorted(sum(vals, [])) == pool
    assert {len(v) for v in vals} <= {len(pool) // 5, len(pool) // 5 + 1}
    for fold in split["folds"]:
        assert sorted(fold["train"] + fold["val"]) == pool
    test = set(split["frames"]["test"])
    assert all(not test & set(frames["train"] + frames["val"]) for frames in split["fold_frames"])
    assert json.loads(json.dumps(split)) == split


@pytest.mark.parametrize("seed", range(5))
def test_stratification_spreads_positive_patients(seed):
    table = cohort(24, 8)
    positive = {f"P{p:03d}" for p in range(8)}
    split = make_split(table, SplitParams(seed=seed, stratify="lesion", folds=5))
    assert set(split["positive_patients"]) == positive
    assert all(positive & set(split["patients"][name]) for name in SUBSETS)
    in_folds = [len(positive & set(fold["val"])) for fold in split["folds"]]
    assert all(1 <= count <= 2 for count in in_folds), in_folds
    assert sum(in_folds) == len(positive - set(split["patients"]["test"]))


def test_unstratified_split_is_the_plain_patient_split():
    table = cohort()
    split = make_split(table, SplitParams(seed=3, stratify=None))
    assert split["patients"] == split_patients(table["patient"], (0.7, 0.15, 0.15), 3)
    assert split["positive_patients"] == [] and split["stratify"] is None


def test_split_and_folds_are_deterministic_per_seed():
    table = cohort()
    first = make_split(table, SplitParams(seed=5))
    assert make_split(table.sample(frac=1, random_state=0), SplitParams(seed=5))["folds"] == first["folds"]
    assert make_split(table, SplitParams(seed=5)) == first
    assert make_split(table, SplitParams(seed=6))["folds"] != first["folds"]


@pytest.mark.parametrize("table, params, message", [
    (cohort(5), SplitParams(folds=5), "4 train\\+val patient\\(s\\) cannot fill 5 folds"),
    (cohort(2), SplitParams(), "2 patient\\(s\\) cannot fill 3"),
    (cohort(), SplitParams(stratify="tumour"), "'tumour' is not a class of the frames \\(they have gland, lesion\\)"),
    (cohort().assign(export_split="images"), SplitParams(method="roboflow"), "folder\\(s\\) images are not"),
])
def test_too_few_patients_or_bad_settings_fail_clearly(table, params, message):
    with pytest.raises(ValueError, match=message):
        make_split(table, params)


def test_roboflow_method_follows_export_split_and_warns_on_straddling(caplog):
    table = cohort(12, 4, frames=3)
    table["export_split"] = ["train", "valid", "test"] * 12  # every patient straddles all three
    table.loc[table["patient"].isin(["P009", "P010", "P011"]), "export_split"] = "test"
    split = make_split(table, SplitParams(method="roboflow", folds=3, stratify="lesion"))
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warning) == 1 and "9 patient(s) straddle" in warning[0] and "P000, P001" in warning[0]
    mapped = table["export_split"].map({"train": "train", "valid": "val", "test": "test"})
    for name in SUBSETS:
        assert split["frames"][name] == table.loc[mapped == name, "frame_id"].tolist()
    pool = sorted(set(split["patients"]["train"]) | set(split["patients"]["val"]))
    assert pool == [f"P{p:03d}" for p in range(9)]
    assert sorted(sum((fold["val"] for fold in split["folds"]), [])) == pool
    allowed = set(split["frames"]["train"] + split["frames"]["val"])
    assert all(set(frames["train"] + frames["val"]) <= allowed for frames in split["fold_frames"])


def test_roboflow_method_without_straddling_is_quiet(caplog):
    table = cohort(9, 3)
    table["export_split"] = table["patient"].map(lambda p: ["train", "valid", "test"][int(p[1:]) % 3])
    make_split(table, SplitParams(method="roboflow", folds=2))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_summary_counts_positive_patients():
    split = make_split(cohort(24, 8), SplitParams(seed=0, folds=5, stratify="lesion"))
    lines = summary_lines(split)
    assert len(lines) == 2 and "with lesion" in lines[0] and lines[1].startswith("split: 5 folds")


def test_train_uses_the_chosen_fold():
    table = cohort()
    split = make_split(table, SplitParams(folds=4))
    known = set(table["frame_id"])
    assert training_ids(split, known) == (split["frames"]["train"], split["frames"]["val"])
    for k, frames in enumerate(split["fold_frames"]):
        assert training_ids(split, known, fold=k) == (frames["train"], frames["val"])
    for fold in (4, -1):
        with pytest.raises(ValueError, match="split.json: --fold .* has 4 fold\\(s\\), numbered 0 to 3"):
            training_ids(split, known, fold=fold)
    with pytest.raises(ValueError, match="split.json: --fold 0 but the split has 0 fold\\(s\\); re-run"):
        training_ids({"frames": split["frames"]}, known, fold=0)
