import pandas as pd
import pytest

from pipeline.splitting import SUBSETS, frames_by_subset, split_patients

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
