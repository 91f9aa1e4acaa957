"""Data assets: drop zone → files → pieces → works → augmented copies → splits."""


import time

import dagster as dg
import polars as pl

from musicml import ingest as ingest_lib
from musicml.corpus import seed_drop_zone
from musicml.curate.augment import AugmentConfig, augment
from musicml.curate.dedup import deduplicate
from musicml.curate.splits import SplitConfig, assign_splits
from musicml.lake import write_parquet
from pipelines.metadata import counts_md, md_table
from pipelines.resources import LakeResource

GROUP = "data"


class RawScoresConfig(dg.Config):
    seed_default_corpus: bool = True  # copy music21's ABC corpus in when the drop zone is empty
    max_file_bytes: int = 32 * 1024 * 1024
    formats: list[str] = ["atex", "abc", "midi"]


@dg.asset(group_name=GROUP, kinds={"polars", "parquet"})
def raw_scores(context: dg.AssetExecutionContext, config: RawScoresConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Every file of the drop zone, one row each: format, bytes, content hash, status and reason."""
    lk = lake.lake()
    if config.seed_default_corpus:
        copied = seed_drop_zone(lk.raw_dir)
        if copied:
            context.log.info(f"drop zone was empty: copied {copied} files of the default corpus (music21 ABC)")
    out = lk.path("ingest", "files.parquet")
    previous = pl.read_parquet(out) if out.exists() else None
    last = [time.perf_counter()]

    def progress(done: int, total: int, rel: str) -> None:
        if time.perf_counter() - last[0] > 10 or done == total:
            last[0] = time.perf_counter()
            context.log.info(f"ingest: {done}/{total} files ({rel})")

    cfg = ingest_lib.IngestConfig(max_file_bytes=config.max_file_bytes, formats=tuple(config.formats))
    result = ingest_lib.ingest(lk, cfg, previous, progress)
    write_parquet(out, result.files)
    counts = result.counts()
    for row in result.files.filter(pl.col("status") == "rejected").iter_rows(named=True):
        context.log.warning(f"rejected: {row['reason']}")
    rate = len(result.files) / result.seconds if result.seconds else 0.0
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(result.files),
            "files": len(result.files),
            **{f"status_{k}": v for k, v in sorted(counts.items())},
            "parsed_now": result.parsed,
            "reused_from_cache": result.reused,
            "files_per_second": round(rate, 1),
            "bytes": int(result.files["bytes"].sum()) if len(result.files) else 0,
            "by_format": counts_md(dict(result.files.group_by("format").len().sort("format").iter_rows())),
            "rejected": md_table(
                result.files.filter(pl.col("status") == "rejected").select("path", "reason"), 20, 200
            ),
            "preview": md_table(result.files.select("path", "format", "bytes", "status", "n_pieces")),
            "path": dg.MetadataValue.path(str(out)),
        }
    )


@dg.asset(group_name=GROUP, deps=[raw_scores], kinds={"polars", "parquet"})
def parsed_scores(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Pieces (one per score; ABC files hold many tunes) with canonical text, and their notes."""
    lk = lake.lake()
    files = pl.read_parquet(lk.path("ingest", "files.parquet"))
    pieces, notes = ingest_lib.load_parsed(lk, files)
    write_parquet(lk.path("parsed", "pieces.parquet"), pieces)
    write_parquet(lk.path("parsed", "notes.parquet"), notes)
    by_format = pieces.group_by("format").agg(
        pl.len().alias("pieces"), pl.col("n_notes").sum().alias("notes"), pl.col("text_bytes").sum().alias("text_bytes")
    ).sort("format")
    context.log.info(f"{len(pieces)} pieces, {len(notes)} notes")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(pieces),
            "pieces": len(pieces),
            "notes": len(notes),
            "by_format": md_table(by_format),
            "preview": md_table(pieces.select("piece_id", "path", "format", "title", "n_notes", "text")),
        }
    )


@dg.asset(group_name=GROUP, deps=[parsed_scores], kinds={"polars", "parquet"})
def deduped_scores(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Pieces grouped into works: exact, re-saved (same notes) and transposed copies collapse to one."""
    lk = lake.lake()
    pieces = pl.read_parquet(lk.path("parsed", "pieces.parquet"))
    notes = pl.read_parquet(lk.path("parsed", "notes.parquet"))
    result = deduplicate(pieces, notes)
    write_parquet(lk.path("curated", "deduped.parquet"), result.pieces)
    dups = result.pieces.filter(~pl.col("is_representative"))
    context.log.info(f"dedup: {result.counts}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(result.pieces),
            **result.counts,
            "counts": counts_md(result.counts, "pieces → works"),
            "duplicates": md_table(dups.select("piece_id", "path", "dup_kind", "dup_of"), 20),
        }
    )


class AugmentationConfig(dg.Config):
    min_shift: int = -3
    max_shift: int = 3
    formats: list[str] = ["atex", "abc", "midi"]
    frets: int = 24


@dg.asset(group_name=GROUP, deps=[deduped_scores], kinds={"polars", "parquet"})
def augmented_scores(
    context: dg.AssetExecutionContext, config: AugmentationConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Each work's representative plus its pitch-shifted copies (default -3..+3 semitones)."""
    lk = lake.lake()
    pieces = pl.read_parquet(lk.path("curated", "deduped.parquet"))
    notes = pl.read_parquet(lk.path("parsed", "notes.parquet"))
    reps = pieces.filter(pl.col("is_representative"))
    cfg = AugmentConfig(min_shift=config.min_shift, max_shift=config.max_shift,
                        formats=tuple(config.formats), frets=config.frets)
    t0, last = time.perf_counter(), [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 10 or done == total:
            last[0] = time.perf_counter()
            rate = done / max(time.perf_counter() - t0, 1e-9)
            context.log.info(f"augment: {done}/{total} works ({rate:.0f}/s)")

    result = augment(reps, notes, cfg, progress)
    write_parquet(lk.path("curated", "augmented.parquet"), result.table)
    per_shift = dict(result.table.group_by("shift").len().sort("shift").iter_rows())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(result.table),
            **result.counts,
            "per_shift": counts_md({f"{k:+d}": v for k, v in per_shift.items()}, "rows per shift"),
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )


class SplitsConfig(dg.Config):
    valid_ratio: float = 0.05
    test_ratio: float = 0.05
    min_valid_works: int = 1
    min_test_works: int = 1
    seed: int = 0


@dg.asset(group_name=GROUP, deps=[augmented_scores], kinds={"polars", "parquet"})
def splits(context: dg.AssetExecutionContext, config: SplitsConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Train/valid/test by work: every piece, duplicate and augmented copy follows its work."""
    lk = lake.lake()
    works = pl.read_parquet(lk.path("curated", "deduped.parquet"))
    aug = pl.read_parquet(lk.path("curated", "augmented.parquet"))
    cfg = SplitConfig(config.valid_ratio, config.test_ratio, config.min_valid_works, config.min_test_works, config.seed)
    assignment = assign_splits(works["work_id"].to_list(), cfg)
    rows = pl.concat(
        [
            aug.select(pl.col("aug_id").alias("row_id"), "piece_id", "work_id", "format", "shift",
                       pl.lit("augmented").alias("kind"), "text_bytes", pl.col("text").hash(seed=0).alias("text_hash")),
            works.filter(~pl.col("is_representative")).select(
                pl.col("piece_id").alias("row_id"), "piece_id", "work_id", "format",
                pl.lit(0, pl.Int8).alias("shift"), pl.format("duplicate:{}", "dup_kind").alias("kind"),
                "text_bytes", pl.col("text").hash(seed=0).alias("text_hash")),
        ]
    ).join(assignment.select("work_id", "split"), on="work_id", how="left").sort("row_id")
    write_parquet(lk.path("curated", "splits.parquet"), rows)
    summary = rows.group_by("split").agg(
        pl.col("work_id").n_unique().alias("works"), pl.len().alias("rows"), pl.col("text_bytes").sum().alias("bytes")
    ).sort("split")
    context.log.info(f"splits: {summary.to_dicts()}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "summary": md_table(summary),
            **{f"works_{r['split']}": r["works"] for r in summary.to_dicts()},
        }
    )
