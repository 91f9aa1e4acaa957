"""Token assets: a tokenizer trained on the train split, and the sharded token parquet."""

import dagster as dg
import polars as pl

from musicml import tokenizers, workflow
from musicml.shards import config as shards_config
from pipelines.assets.curation import splits
from pipelines.config import dagster_config
from pipelines.metadata import md_table
from pipelines.resources import LakeResource
from pipelines.retries import retry_transient

GROUP = "tokens"


TokenizerConfig = dagster_config(tokenizers.TokenizerConfig, name="TokenizerConfig")


@dg.asset(group_name=GROUP, deps=[splits], kinds={"huggingface", "json"})
def tokenizer(context: dg.AssetExecutionContext, config: TokenizerConfig, lake: LakeResource) -> dg.MaterializeResult:
    """A tokenizer trained on the train split only (byte-level BPE by default), saved as JSON."""
    lk = lake.lake()
    codec = workflow.tokenizer_step(lk, config.build())
    info = codec.info
    example = workflow.split_texts(lk).filter(pl.col("split") == "train").head(1)
    preview = ""
    if len(example):
        ids = codec.encode_documents(example["format"].to_list(), [example["text"][0][:300]])[0][2:]
        preview = " | ".join(codec.decode([i]) for i in ids[:60])
    decision = info.get("retrain", {})
    figures = decision.get("figures", {})
    context.log.info(f"tokenizer {decision.get('action')}: {decision.get('reason')}")
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
            "retrain": decision.get("action", ""),
            "retrain_reason": decision.get("reason", ""),
            "retrain_figures": dg.MetadataValue.json(figures),
            "bytes_per_token": dg.MetadataValue.json(
                figures.get("train_split", {}).get("bytes_per_token") or info.get("bytes_per_token", {})),
            "preview_tokens": dg.MetadataValue.text(preview),
            "path": dg.MetadataValue.path(str(lk.path("tokenizer", "tokenizer.json"))),
        }
    )


ShardsConfig = dagster_config(shards_config.ShardsConfig, name="ShardsConfig")


@dg.asset(group_name=GROUP, deps=[tokenizer], kinds={"parquet", "duckdb"})
def token_shards(context: dg.AssetExecutionContext, config: ShardsConfig, lake: LakeResource) -> dg.MaterializeResult:
    """BOS-aligned token documents in zstd parquet shards per split, a manifest, and the DuckDB catalog."""
    lk = lake.lake()
    with retry_transient(context):  # the catalog's DuckDB file may be busy
        manifest = workflow.shards_step(lk, config.build())
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
            **({f"token_cache_{k}": v for k, v in manifest["token_cache"].items()}
               if manifest.get("token_cache") else {}),
        }
    )
