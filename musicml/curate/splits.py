"""Train/valid/test assignment by work: deterministic, stable as the corpus grows, leak-free.

Each work hashes (with a seed) to a number in [0, 1); ``valid_ratio`` and ``test_ratio`` cut that
interval, so a work keeps its split when other works are added. If valid or test would hold
fewer than the minimum number of works, the train works nearest the cut move over (still
deterministic). Every piece and augmented copy follows its work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SplitConfig:
    valid_ratio: float = 0.05
    test_ratio: float = 0.05
    min_valid_works: int = 1
    min_test_works: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.valid_ratio < 1 and 0 <= self.test_ratio < 1 and self.valid_ratio + self.test_ratio < 1):
            raise ValueError("valid_ratio and test_ratio must be in [0, 1) and sum below 1")


def _unit(work_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{work_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(work_ids: list[str], config: SplitConfig = SplitConfig()) -> pl.DataFrame:
    """One row per work: ``work_id``, ``u`` (its hash position) and ``split``."""
    works = sorted(set(work_ids))
    u = [_unit(w, config.seed) for w in works]
    df = pl.DataFrame({"work_id": works, "u": u}, schema={"work_id": pl.String, "u": pl.Float64})
    v_cut, t_cut = config.valid_ratio, config.valid_ratio + config.test_ratio
    df = df.with_columns(
        pl.when(pl.col("u") < v_cut).then(pl.lit("valid"))
        .when(pl.col("u") < t_cut).then(pl.lit("test"))
        .otherwise(pl.lit("train")).alias("split")
    ).sort("u")
    n = len(df)
    splits = df["split"].to_list()
    # train keeps at least one work; then valid, then test get their minimums (deterministic:
    # the works nearest the cuts move)
    if n and "train" not in splits:
        splits[-1] = "train"  # highest u
    need_valid = min(config.min_valid_works, max(n - 1, 0))
    need_test = min(config.min_test_works, max(n - 1 - need_valid, 0))
    for name, need in (("valid", need_valid), ("test", need_test)):
        missing = need - splits.count(name)
        for i in range(n):  # lowest-u train works move first
            if missing <= 0:
                break
            if splits[i] == "train" and splits.count("train") > 1:
                splits[i] = name
                missing -= 1
    return df.with_columns(pl.Series("split", splits)).sort("work_id")


def find_leaks(rows: pl.DataFrame) -> pl.DataFrame:
    """Works whose rows (pieces, duplicates, augmentations) sit in more than one split."""
    return (
        rows.group_by("work_id")
        .agg(pl.col("split").n_unique().alias("n_splits"), pl.col("split").unique().sort().alias("splits"))
        .filter(pl.col("n_splits") > 1)
        .sort("work_id")
    )
