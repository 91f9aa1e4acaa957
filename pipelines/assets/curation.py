"""Data assets: drop zone → files → pieces → works → augmented copies → splits."""

import time

import dagster as dg
import polars as pl

from musicml import workflow
from musicml.curate.augment import AugmentConfig
from musicml.curate.splits import SplitConfig
from musicml.ingest import IngestConfig, parsed
from pipelines.assets.buckets import raw_score_buckets
from pipelines.config import dagster_config
from pipelines.metadata import counts_md, md_table, throttled_progress
from pipelines.resources import LakeResource

GROUP = "data"


RawScoresConfig = dagster_config(IngestConfig, name="RawScoresConfig", extra={
    "seed_default_corpus": (bool, True, "copy music21's ABC corpus in when the drop zone is empty")})


@dg.asset(group_name=GROUP, deps=[raw_score_buckets], kinds={"polars", "parquet"})
def raw_scores(context: dg.AssetExecutionContext, config: RawScoresConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Every file of the drop zone, one row each: format, bytes, mtime, content hash, status and
    reason. ``paths`` (set by the drop-zone sensor) re-examines only those entries; rows that
    bucket ingestions (``raw_score_buckets``, other machines) wrote are reused, not re-read."""
    lk = lake.lake()
    cfg = config.build()
    result, seeded = workflow.ingest_step(lk, cfg, seed_default_corpus=config.seed_default_corpus,
                                          progress=throttled_progress(context, "ingest", "files"))
    if seeded:
        context.log.info(f"drop zone was empty: copied {seeded} files of the default corpus (music21 ABC)")
    files = result.files
    for row in files.filter(pl.col("status") == "rejected").iter_rows(named=True):
        context.log.warning(f"rejected: {row['reason']}")
    counts = result.counts()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(files),
            **{f"status_{k}": v for k, v in sorted(counts.items())},
            "parsed_now": result.parsed,
            "reused_from_cache": result.reused,
            "files_read": result.read,  # the others were trusted by path, size and mtime
            "requested_paths": len(cfg.paths) if cfg.paths is not None else "all",
            "files_per_second": round(len(files) / result.seconds, 1) if result.seconds else 0.0,
            "bytes": int(files["bytes"].sum()) if len(files) else 0,
            "by_format": counts_md(dict(files.group_by("format").len().sort("format").iter_rows())),
            "rejected": md_table(files.filter(pl.col("status") == "rejected").select("path", "reason"), 20, 200),
            "preview": md_table(files.select("path", "format", "bytes", "status", "n_pieces")),
            "path": dg.MetadataValue.path(str(lk.path("ingest", "files.parquet"))),
        }
    )


@dg.asset(group_name=GROUP, deps=[raw_scores], kinds={"polars", "parquet"})
def parsed_scores(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Pieces (one per score; ABC files hold many tunes) with canonical text, and their notes."""
    pieces, notes = workflow.parse_step(lake.lake())
    by_format = pieces.group_by("format").agg(
        pl.len().alias("pieces"), pl.col("n_notes").sum().alias("notes"), pl.col("text_bytes").sum().alias("text_bytes")
    ).sort("format")
    context.log.info(f"{len(pieces)} pieces, {notes.rows} notes in {len(notes.paths)} parts ({notes.linked} new "
                     f"linked from the cache, {notes.written} written, {notes.merged} merges of small parts)")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(pieces),
            "notes": notes.rows,
            "note_parts": len(notes.paths),
            "by_format": md_table(by_format),
            "preview": md_table(parsed.scan_pieces(lake.lake()).select("piece_id", "path", "format", "title", "n_notes",
                                                                       "text").head(10).collect()),
        }
    )


@dg.asset(group_name=GROUP, deps=[parsed_scores], kinds={"polars", "parquet"})
def deduped_scores(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    """Pieces grouped into works: exact, re-saved (same notes) and transposed copies collapse to one."""
    result = workflow.dedup_step(lake.lake())
    context.log.info(f"dedup: {result.counts}")
    dups = result.pieces.filter(~pl.col("is_representative"))
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(result.pieces),
            **result.counts,
            "counts": counts_md(result.counts, "pieces → works"),
            "duplicates": md_table(dups.select("piece_id", "path", "dup_kind", "dup_of"), 20),
        }
    )


AugmentationConfig = dagster_config(AugmentConfig, name="AugmentationConfig")


@dg.asset(group_name=GROUP, deps=[deduped_scores], kinds={"polars", "parquet"})
def augmented_scores(
    context: dg.AssetExecutionContext, config: AugmentationConfig, lake: LakeResource
) -> dg.MaterializeResult:
    """Each work's representative plus its pitch-shifted copies (default -3..+3 semitones)."""
    t0 = time.perf_counter()
    cfg = config.build()
    result = workflow.augment_step(lake.lake(), cfg, throttled_progress(context, "augment", "works"))
    per_shift = dict(result.table.group_by("shift").len().sort("shift").iter_rows())
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(result.table),
            **result.counts,
            "per_shift": counts_md({f"{k:+d}": v for k, v in per_shift.items()}, "rows per shift"),
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )


SplitsConfig = dagster_config(SplitConfig, name="SplitsConfig")


@dg.asset(group_name=GROUP, deps=[augmented_scores], kinds={"polars", "parquet"})
def splits(context: dg.AssetExecutionContext, config: SplitsConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Train/valid/test by work: every piece, duplicate and augmented copy follows its work."""
    cfg = config.build()
    summary = workflow.split_step(lake.lake(), cfg)
    context.log.info(f"splits: {summary.to_dicts()}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(summary["rows"].sum()),
            "summary": md_table(summary),
            **{f"works_{r['split']}": r["works"] for r in summary.to_dicts()},
        }
    )
