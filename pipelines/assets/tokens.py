"""Token assets: a tokenizer trained on the train split, and the sharded token parquet."""

import dagster as dg
import polars as pl

from musicml import workflow
from pipelines.assets.curation import splits
from pipelines.metadata import md_table
from pipelines.resources import LakeResource

GROUP = "tokens"


class TokenizerConfig(dg.Config):
    kind: str = "bpe"  # bpe | char (the char-level baselines')
    vocab_size: int = 8192  # the nanochat alphaTex run's; shrunk automatically for tiny corpora
    pretokenizer: str = "music"  # music | nanochat | bytelevel
    min_frequency: int = 2


@dg.asset(group_name=GROUP, deps=[splits], kinds={"huggingface", "json"})
def tokenizer(context: dg.AssetExecutionContext, config: TokenizerConfig, lake: LakeResource) -> dg.MaterializeResult:
    """A tokenizer trained on the train split only (byte-level BPE by default), saved as JSON."""
    lk = lake.lake()
    codec = workflow.tokenizer_step(lk, kind=config.kind, vocab_size=config.vocab_size,
                                    pretokenizer=config.pretokenizer, min_frequency=config.min_frequency)
    info = codec.info
    example = workflow.split_texts(lk).filter(pl.col("split") == "train").head(1)
    preview = ""
    if len(example):
        ids = codec.encode_documents(example["format"].to_list(), [example["text"][0][:300]])[0][2:]
        preview = " | ".join(codec.decode([i]) for i in ids[:60])
    if config.kind == "bpe" and info["vocab_size"] < config.vocab_size:
        context.log.info(f"vocab shrunk from {config.vocab_size} to {info['vocab_size']} "
                         f"for {info['train_bytes']} train bytes")
    return dg.MaterializeResult(
        metadata={
            "kind": config.kind,
            "vocab_size": info["vocab_size"],
            "requested_vocab_size": info["requested_vocab_size"],
            "pretokenizer": info["pretokenizer"],
            "train_docs": info["train_docs"],
            "train_bytes": info["train_bytes"],
            "digest": info["digest"],
            "preview_tokens": dg.MetadataValue.text(preview),
            "path": dg.MetadataValue.path(str(lk.path("tokenizer", "tokenizer.json"))),
        }
    )


class ShardsConfig(dg.Config):
    tokens_per_shard: int = 2_000_000
    augment_eval_splits: bool = False  # valid/test hold originals only unless set
    seed: int = 0


@dg.asset(group_name=GROUP, deps=[tokenizer], kinds={"parquet", "duckdb"})
def token_shards(context: dg.AssetExecutionContext, config: ShardsConfig, lake: LakeResource) -> dg.MaterializeResult:
    """BOS-aligned token documents in zstd parquet shards per split, a manifest, and the DuckDB catalog."""
    lk = lake.lake()
    manifest = workflow.shards_step(lk, tokens_per_shard=config.tokens_per_shard,
                                    augment_eval_splits=config.augment_eval_splits, seed=config.seed)
    summary = pl.DataFrame(
        [{"split": s, "shards": len(v["shards"]), "rows": v["rows"], "tokens": v["tokens"],
          "bytes": manifest["bytes"][s], "bytes_per_token": round(manifest["bytes"][s] / max(1, v["tokens"]), 3)}
         for s, v in sorted(manifest["splits"].items())]
    )
    context.log.info(f"shards: digest {manifest['digest'][:12]}, catalog views {manifest['catalog_views']}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(summary["rows"].sum()),
            "digest": manifest["digest"],
            "summary": md_table(summary),
            **{f"tokens_{r['split']}": r["tokens"] for r in summary.to_dicts()},
            "formats": ", ".join(manifest["formats"]),
            "catalog": dg.MetadataValue.path(str(lk.catalog_path)),
            "catalog_views": ", ".join(manifest["catalog_views"]),
        }
    )
