"""Token shards (asset ``token_shards``): sharded parquet with a manifest, and the packing
that turns shards into training batches."""

from __future__ import annotations

from musicml.shards.manifest import (  # noqa: F401
    SHARD_SCHEMA,
    Doc,
    read_manifest,
    shard_paths,
    verify,
    write_shards,
)
from musicml.shards.packing import (  # noqa: F401
    DEFAULT_WINDOW_DOCS,
    DataPosition,
    eval_batches,
    iter_batches,
    pack_window,
    read_documents,
    split_long,
)
