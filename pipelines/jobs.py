"""Jobs: the whole graph, the data half and the model half."""

from __future__ import annotations

import dagster as dg

main_job = dg.define_asset_job("main_job", selection=dg.AssetSelection.all(),
                               description="Drop zone to trained, evaluated model and samples.")
data_job = dg.define_asset_job("data_job", selection=dg.AssetSelection.groups("data", "tokens"),
                               description="Ingest, curate, split, tokenize and shard.")
train_job = dg.define_asset_job("train_job", selection=dg.AssetSelection.groups("model"),
                                description="Train, evaluate and sample on the current shards.")
