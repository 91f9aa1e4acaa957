"""Jobs: the whole graph, the data half and the model half."""

from __future__ import annotations

import dagster as dg

from pipelines.assets.buckets import BUCKET_PARTITIONS, raw_score_buckets

main_job = dg.define_asset_job("main_job", selection=dg.AssetSelection.all() - dg.AssetSelection.assets(raw_score_buckets),
                               description="Drop zone to trained, evaluated model and samples.")
data_job = dg.define_asset_job("data_job", selection=dg.AssetSelection.groups("data", "tokens"),
                               description="Ingest, curate, split, tokenize and shard.")
train_job = dg.define_asset_job("train_job", selection=dg.AssetSelection.groups("model"),
                                description="Train, evaluate and sample on the current shards.")
ingest_buckets_job = dg.define_asset_job(
    "ingest_buckets_job", selection=dg.AssetSelection.assets(raw_score_buckets), partitions_def=BUCKET_PARTITIONS,
    description="Ingest one hash bucket of the drop zone; backfill every partition to spread ingestion over "
                "machines (one run per bucket), then run main_job, which reuses what the buckets read.")
