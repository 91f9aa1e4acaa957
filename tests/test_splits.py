"""Train/valid/test assignment by work: deterministic, stable, minimums enforced, leak check."""

from __future__ import annotations

import polars as pl
import pytest

from musicml.curate.splits import SPLITS, SplitConfig, _unit, assign_splits, find_leaks


def _as_dict(df: pl.DataFrame) -> dict[str, str]:
    return dict(zip(df["work_id"], df["split"]))


def _ids(n: int, prefix: str = "w") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(n)]


@pytest.fixture(scope="module")
def big() -> pl.DataFrame:
    return assign_splits(_ids(10_000))


def test_output_shape(big: pl.DataFrame) -> None:
    assert big.columns == ["work_id", "u", "split"]
    assert big["work_id"].to_list() == sorted(_ids(10_000))
    assert set(big["split"]) <= set(SPLITS)
    assert big["u"].min() >= 0 and big["u"].max() < 1


def test_deterministic_and_order_independent(big: pl.DataFrame) -> None:
    ids = _ids(10_000)
    again = assign_splits(list(reversed(ids)) + ids[:50])  # order and repeats do not matter
    assert again.equals(big)


def test_seed_changes_assignment(big: pl.DataFrame) -> None:
    other = assign_splits(_ids(10_000), SplitConfig(seed=1))
    assert _as_dict(other) != _as_dict(big)
    counts = other["split"].value_counts()
    assert counts["count"].sum() == 10_000


def test_ratios_roughly_respected(big: pl.DataFrame) -> None:
    counts = dict(big["split"].value_counts().iter_rows())
    assert 400 <= counts["valid"] <= 600
    assert 400 <= counts["test"] <= 600
    assert counts["train"] == 10_000 - counts["valid"] - counts["test"]
    custom = dict(assign_splits(_ids(10_000), SplitConfig(valid_ratio=0.1, test_ratio=0.2))["split"]
                  .value_counts().iter_rows())
    assert 850 <= custom["valid"] <= 1150 and 1800 <= custom["test"] <= 2200


def test_split_follows_hash_position(big: pl.DataFrame) -> None:
    for work_id, u, split in big.iter_rows():
        expected = "valid" if u < 0.05 else "test" if u < 0.10 else "train"
        assert split == expected, work_id


def test_stable_when_works_are_added(big: pl.DataFrame) -> None:
    grown = assign_splits(_ids(10_000) + _ids(2_000, prefix="new"))
    before, after = _as_dict(big), _as_dict(grown)
    assert all(after[w] == s for w, s in before.items())


def test_stable_when_small_corpus_grows() -> None:
    # above the minimums, adding works never moves an existing one
    base = assign_splits(_ids(200))
    grown = assign_splits(_ids(200) + _ids(50, prefix="x"))
    before, after = _as_dict(base), _as_dict(grown)
    assert all(after[w] == s for w, s in before.items())


def test_one_work_stays_in_train() -> None:
    # a lone work (hashed into train) is not moved: training needs at least one work
    df = assign_splits(["w00000"])
    assert df["u"][0] >= 0.1
    assert df["split"].to_list() == ["train"]


def test_two_works_train_and_valid() -> None:
    df = assign_splits(_ids(2))
    assert sorted(df["split"]) == ["train", "valid"]


@pytest.mark.parametrize("n", [3, 4, 7])
def test_minimum_valid_and_test_for_tiny_inputs(n: int) -> None:
    df = assign_splits(_ids(n))
    counts = dict(df["split"].value_counts().iter_rows())
    assert counts["valid"] >= 1 and counts["test"] >= 1 and counts["train"] >= 1
    assert sum(counts.values()) == n
    if n == 3:
        assert counts == {"train": 1, "valid": 1, "test": 1}


def _ids_hashed_outside_train(count: int) -> list[str]:
    found, i = [], 0
    while len(found) < count:
        w = f"lone{i}"
        config = SplitConfig()
        if _unit(w, config.seed) < config.valid_ratio + config.test_ratio:  # hashes outside train
            found.append(w)
        i += 1
    return found


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_corpus_always_keeps_a_train_work(n: int) -> None:
    df = assign_splits(_ids_hashed_outside_train(n))
    assert "train" in df["split"].to_list()


def test_tiny_inputs_are_deterministic() -> None:
    for n in (1, 2, 3, 5):
        assert assign_splits(_ids(n)).equals(assign_splits(_ids(n)))


def test_minimum_counts_larger_than_one() -> None:
    df = assign_splits(_ids(20), SplitConfig(min_valid_works=3, min_test_works=2))
    counts = dict(df["split"].value_counts().iter_rows())
    assert counts.get("valid", 0) >= 3 and counts.get("test", 0) >= 2 and counts.get("train", 0) >= 1


def test_minimum_moves_lowest_u_train_works() -> None:
    df = assign_splits(_ids(10), SplitConfig(valid_ratio=0.0, test_ratio=0.0, min_valid_works=2, min_test_works=1))
    by_u = df.sort("u")["split"].to_list()
    assert by_u[:3] == ["valid", "valid", "test"]
    assert by_u[3:] == ["train"] * 7


def test_zero_minimums_allow_empty_valid_test() -> None:
    df = assign_splits(_ids(5), SplitConfig(valid_ratio=0.0, test_ratio=0.0, min_valid_works=0, min_test_works=0))
    assert df["split"].to_list() == ["train"] * 5


def test_empty_input() -> None:
    df = assign_splits([])
    assert df.is_empty() and df.columns == ["work_id", "u", "split"]


@pytest.mark.parametrize(
    ("valid", "test"), [(-0.1, 0.1), (1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (0.7, 0.4), (0.1, -0.01)]
)
def test_invalid_ratios_raise(valid: float, test: float) -> None:
    with pytest.raises(ValueError, match="valid_ratio and test_ratio"):
        SplitConfig(valid_ratio=valid, test_ratio=test)


def test_find_leaks_finds_a_planted_leak(big: pl.DataFrame) -> None:
    split_of = _as_dict(big.head(100))
    rows = pl.DataFrame({
        "aug_id": [f"{w}{k:+d}" if k else w for w in split_of for k in (0, 1, -2)],
        "work_id": [w for w in split_of for _ in range(3)],
    }).with_columns(pl.col("work_id").replace_strict(split_of).alias("split"))
    assert find_leaks(rows).is_empty()
    victim = sorted(split_of)[7]
    other = "test" if split_of[victim] != "test" else "train"
    leaked = rows.with_columns(
        pl.when(pl.col("aug_id") == f"{victim}+1").then(pl.lit(other)).otherwise(pl.col("split")).alias("split")
    )
    leaks = find_leaks(leaked)
    assert leaks["work_id"].to_list() == [victim]
    assert leaks["n_splits"].to_list() == [2]
    assert leaks["splits"].to_list() == [sorted([split_of[victim], other])]
