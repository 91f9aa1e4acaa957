"""Token assets: a BPE tokenizer trained on the train split, and the sharded token parquet."""


import dagster as dg
import polars as pl

from musicml import catalog, shards
from musicml.lake import Lake, write_parquet
from musicml.tokenizers import bpe
from pipelines.assets.curation import splits
from pipelines.metadata import md_table
from pipelines.resources import LakeResource

GROUP = "tokens"


def split_texts(lk: Lake) -> pl.DataFrame:
    """Augmented rows (originals and shifted copies) with their split and text."""
    aug = pl.read_parquet(lk.path("curated", "augmented.parquet"))
    rows = pl.read_parquet(lk.path("curated", "splits.parquet")).filter(pl.col("kind") == "augmented")
    return aug.join(rows.select(pl.col("row_id").alias("aug_id"), "split"), on="aug_id", how="inner").sort("aug_id")


class TokenizerConfig(dg.Config):
    vocab_size: int = 8192  # the nanochat alphaTex run's; shrunk automatically for tiny corpora
    pretokenizer: str = "music"  # music | nanochat | bytelevel
    min_frequency: int = 2


@dg.asset(group_name=GROUP, deps=[splits], kinds={"huggingface", "json"})
def tokenizer(context: dg.AssetExecutionContext, config: TokenizerConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Byte-level BPE trained on the train split only, saved as JSON."""
    lk = lake.lake()
    train = split_texts(lk).filter(pl.col("split") == "train")
    tok, info = bpe.train_bpe(train["text"].to_list(), vocab_size=config.vocab_size,
                              pretokenizer=config.pretokenizer, min_frequency=config.min_frequency)
    paths = bpe.save(tok, info, lk.dir("tokenizer"))
    sample = train["text"].head(1).to_list()
    preview = ""
    if sample:
        ids = tok.encode(sample[0][:300], add_special_tokens=False).ids
        preview = " ".join(repr(tok.id_to_token(i)) for i in ids[:60])
    if info.vocab_size < config.vocab_size:
        context.log.info(f"vocab shrunk from {config.vocab_size} to {info.vocab_size} for {info.train_bytes} train bytes")
    return dg.MaterializeResult(
        metadata={
            "vocab_size": info.vocab_size,
            "requested_vocab_size": info.requested_vocab_size,
            "pretokenizer": info.pretokenizer,
            "train_docs": info.train_docs,
            "train_bytes": info.train_bytes,
            "digest": info.digest,
            "preview_tokens": dg.MetadataValue.text(preview),
            "path": dg.MetadataValue.path(str(paths["tokenizer"])),
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
    tok, info = bpe.load(lk.path("tokenizer"))
    rows = split_texts(lk)
    if not config.augment_eval_splits:
        rows = rows.filter((pl.col("split") == "train") | (pl.col("shift") == 0))
    ids = bpe.encode_documents(tok, rows["format"].to_list(), rows["text"].to_list())
    docs: dict[str, list[shards.Doc]] = {"train": [], "valid": [], "test": []}
    for (aug_id, work_id, fmt, shift, split), toks in zip(
        rows.select("aug_id", "work_id", "format", "shift", "split").iter_rows(), ids
    ):
        docs[split].append(shards.Doc(aug_id, work_id, fmt, shift, toks))
    shard_dir = lk.dir("shards")
    manifest = shards.write_shards(
        docs, shard_dir, tokens_per_shard=config.tokens_per_shard, seed=config.seed,
        extra={"formats": sorted(set(rows.filter(pl.col("split") == "train")["format"].to_list())),
               "tokenizer_digest": info.digest, "vocab_size": info.vocab_size, "bos_id": info.bos_id},
    )
    table = pl.DataFrame(
        [{"split": s, **e} for s, v in manifest["splits"].items() for e in v["shards"]],
        schema={"split": pl.String, "file": pl.String, "rows": pl.Int64, "tokens": pl.Int64, "sha256": pl.String},
    )
    write_parquet(shard_dir / "shards.parquet", table)
    views = catalog.refresh(lk)
    context.log.info(f"shards: digest {manifest['digest'][:12]}, catalog views {views}")
    summary = pl.DataFrame(
        [{"split": s, "shards": len(v["shards"]), "rows": v["rows"], "tokens": v["tokens"]}
         for s, v in sorted(manifest["splits"].items())]
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": int(summary["rows"].sum()),
            "digest": manifest["digest"],
            "summary": md_table(summary),
            **{f"tokens_{r['split']}": r["tokens"] for r in summary.to_dicts()},
            "catalog": dg.MetadataValue.path(str(lk.catalog_path)),
            "catalog_views": ", ".join(views),
        }
    )
