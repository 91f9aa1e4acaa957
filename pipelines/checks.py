"""Asset checks: the guarantees the data must keep before a model may train on it."""

# no `from __future__ import annotations`: Dagster reads the config class from the annotation
import dagster as dg
import polars as pl

from musicml import shards
from musicml.automation import DataChecksConfig
from musicml.curate.splits import find_leaks
from musicml.lake import read_frame
from pipelines.assets.curation import raw_scores, splits
from pipelines.assets.tokens import token_shards
from pipelines.config import dagster_config
from pipelines.metadata import md_table
from pipelines.resources import LakeResource


@dg.asset_check(asset=splits, blocking=True, description="No work, duplicate or augmented copy straddles splits.")
def no_split_leak(lake: LakeResource) -> dg.AssetCheckResult:
    lk = lake.lake()
    rows = read_frame(lk.path("curated", "splits.parquet"))
    by_work = find_leaks(rows)
    same_text = (
        rows.group_by("text_hash").agg(pl.col("split").n_unique().alias("n"), pl.col("row_id").first())
        .filter(pl.col("n") > 1)
    )
    unassigned = rows.filter(pl.col("split").is_null())
    ok = by_work.is_empty() and same_text.is_empty() and unassigned.is_empty()
    return dg.AssetCheckResult(
        passed=ok,
        metadata={
            "works_in_several_splits": len(by_work),
            "identical_texts_in_several_splits": len(same_text),
            "rows_without_split": len(unassigned),
            "leaks": md_table(by_work.with_columns(pl.col("splits").list.join(","))),
        },
    )


@dg.asset_check(asset=raw_scores, description="Every file of the drop zone has exactly one row with a status.")
def every_file_accounted(lake: LakeResource) -> dg.AssetCheckResult:
    from musicml.ingest import scan

    lk = lake.lake()
    files = read_frame(lk.path("ingest", "files.parquet"))
    on_disk = {e.rel for e in scan(lk.raw_dir)}
    rows = files["path"].to_list()
    missing, extra = on_disk - set(rows), set(rows) - on_disk
    dup_rows = len(rows) - len(set(rows))
    no_reason = files.filter((pl.col("status") != "ingested") & (pl.col("reason") == ""))
    return dg.AssetCheckResult(
        passed=not missing and not extra and dup_rows == 0 and no_reason.is_empty(),
        metadata={"missing": len(missing), "extra": len(extra), "duplicate_rows": dup_rows,
                  "rejected_without_reason": len(no_reason)},
    )


EnoughValidFilesConfig = dagster_config(DataChecksConfig, name="EnoughValidFilesConfig")


@dg.asset_check(asset=raw_scores, blocking=True,
                description="At least min_valid_files files of the drop zone were ingested (not rejected).")
def enough_valid_files(config: EnoughValidFilesConfig, lake: LakeResource) -> dg.AssetCheckResult:
    files = read_frame(lake.lake().path("ingest", "files.parquet"))
    counts = dict(files.group_by("status").len().iter_rows())
    valid, needed = counts.get("ingested", 0), config.build().min_valid_files
    return dg.AssetCheckResult(
        passed=valid >= needed,
        metadata={"ingested": valid, "min_valid_files": needed,
                  **{f"status_{k}": v for k, v in sorted(counts.items())}},
    )


@dg.asset_check(asset=token_shards, blocking=True, description="Shards match the manifest and every document starts with BOS.")
def shards_match_manifest(lake: LakeResource) -> dg.AssetCheckResult:
    import pyarrow.parquet as pq

    lk = lake.lake()
    shard_dir = lk.path("shards")
    problems = shards.verify(shard_dir)
    manifest = shards.read_manifest(shard_dir)
    bos = manifest["bos_id"]
    for split in manifest["splits"]:
        for path in shards.shard_paths(shard_dir, split):
            col = pq.read_table(path, columns=["tokens"]).column("tokens").to_pylist()
            bad = sum(1 for t in col if not t or t[0] != bos)
            if bad:
                problems.append(f"{path.name} ({split}): {bad} documents do not start with BOS")
    empty = [s for s in ("train", "valid", "test") if manifest["splits"].get(s, {}).get("tokens", 0) == 0]
    problems += [f"split {s} holds no tokens" for s in empty]
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": "\n".join(problems) or "none"})
