"""Ingestion on several machines: the drop zone in hash buckets, one partition each.

A backfill of ``ingest_buckets_job`` over every partition runs each bucket as its own run (its
own pod under the Kubernetes run launcher, ``deploy/README.md``); ``raw_scores`` afterwards
reuses every row the buckets wrote and parses nothing again.
"""

import dagster as dg
import polars as pl

from musicml import workflow
from musicml.ingest import IngestConfig
from musicml.ingest.buckets import bucket_names, bucket_table_path
from pipelines.config import dagster_config
from pipelines.metadata import counts_md, md_table, throttled_progress
from pipelines.resources import LakeResource

GROUP = "scale_out"
BUCKET_PARTITIONS = dg.StaticPartitionsDefinition(bucket_names())

BucketIngestConfig = dagster_config(IngestConfig, name="BucketIngestConfig",
                                    doc="Ingestion settings of one bucket (``paths`` is not used here).")


@dg.asset(group_name=GROUP, partitions_def=BUCKET_PARTITIONS, kinds={"polars", "parquet"})
def raw_score_buckets(context: dg.AssetExecutionContext, config: BucketIngestConfig,
                      lake: LakeResource) -> dg.MaterializeResult:
    """The drop-zone entries of one hash bucket of their paths, parsed into the shared parse
    cache, with their rows in ``ingest/buckets/<bucket>.parquet``."""
    lk = lake.lake()
    bucket = context.partition_key
    result = workflow.ingest_bucket_step(lk, bucket, config.build(),
                                         progress=throttled_progress(context, f"bucket {bucket}", "files"))
    files = result.files
    for row in files.filter(pl.col("status") == "rejected").iter_rows(named=True):
        context.log.warning(f"rejected: {row['reason']}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(files),
        **{f"status_{k}": v for k, v in sorted(result.counts().items())},
        "parsed_now": result.parsed,
        "files_read": result.read,
        "by_format": counts_md(dict(files.group_by("format").len().sort("format").iter_rows())),
        "rejected": md_table(files.filter(pl.col("status") == "rejected").select("path", "reason"), 20, 200),
        "path": dg.MetadataValue.path(str(bucket_table_path(lk, bucket))),
    })
