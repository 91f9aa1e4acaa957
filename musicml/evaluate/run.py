"""The evaluation step (asset ``model_evaluation``): every figure computed once, written once.

For the latest training run of a lake it computes, over the valid and test splits:

* ``val_bpb`` / ``test_bpb`` (:mod:`musicml.evaluate.bpb`) and the unigram baseline's
  ``unigram_val_bpb`` / ``unigram_test_bpb`` on exactly the same target positions;
* with the whole split scored (``max_tokens=None``, the default) ``val_bpn`` / ``test_bpn`` and
  ``unigram_val_bpn`` / ``unigram_test_bpn`` (:mod:`musicml.evaluate.bpn`), with the counts they
  divide by (``val_notes``, ``val_bytes``, ...);
* validity rates of generated samples per format (:mod:`musicml.evaluate.validity`);
* musical metrics (:mod:`musicml.evaluate.musical`) of the generated samples that have notes:
  ``mm_<metric>`` (mean over samples), ``oa_<metric>`` (overlapping area with the test split's
  pieces), and the held-out ceiling ``oa_ref_<metric>`` (valid split against test), with
  ``mm_test_<metric>`` for scale.

The same dict goes to ``evaluation.json`` (in the run folder), to MLflow (each figure its key's
latest value) and, through the asset, to the Dagster metadata. Non-finite figures (a metric
with no samples to measure) are left out of all three.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import symusic

from musicml import shards, tracking
from musicml.evaluate import musical
from musicml.evaluate.bpb import split_nll, unigram_nll
from musicml.evaluate.bpn import bits_per_note, document_notes, shard_doc_ids
from musicml.evaluate.config import EvaluationConfig
from musicml.ingest import parsed
from musicml.lake import Lake, read_json, write_json

SPLITS = (("valid", "val"), ("test", "test"))


def evaluate(lake: Lake, cfg: EvaluationConfig, *, tracking_uri: str, run: dict | None = None) -> dict[str, float]:
    """Evaluate a training run (its record, ``run.json``; default the lake's latest,
    ``models/latest.json``); returns the figures."""
    from musicml.checkpoint import load_model
    from musicml.device import pick_device
    from musicml.generate import samples as samples_lib
    from musicml.tokenizers import load_codec

    run = run or read_json(lake.path("models", "latest.json"))
    run_dir = Path(run["run_dir"])
    dev = pick_device(cfg.device)
    model, _ = load_model(run["checkpoint"], device=dev)
    codec = load_codec(lake.path("tokenizer"))
    tb = codec.token_bytes()
    shard_dir = lake.path("shards")
    seq_len = int(run["train_config"]["seq_len"])
    train_paths = shards.shard_paths(shard_dir, "train")
    metrics: dict[str, float] = {}
    for split, key in SPLITS:
        paths = shards.shard_paths(shard_dir, split)
        nll = split_nll(model, paths, tb, seq_len=seq_len, batch_size=cfg.batch_size,
                        max_tokens=cfg.max_tokens, device=dev)
        uni = unigram_nll(train_paths, paths, tb, seq_len=seq_len, max_tokens=cfg.max_tokens)
        metrics.update({f"{key}_bpb": nll.bpb, f"unigram_{key}_bpb": uni.bpb, f"{key}_bytes": nll.bytes})
        if cfg.max_tokens is None:
            notes = int(document_notes(lake, shard_doc_ids(paths))["notes"].sum())
            metrics.update({f"{key}_bpn": bits_per_note(nll, notes),
                            f"unigram_{key}_bpn": bits_per_note(uni, notes), f"{key}_notes": notes})
    formats = shards.read_manifest(shard_dir).get("formats") or ["abc"]
    scores: list[symusic.Score] = []
    if cfg.validity_samples:
        generated = samples_lib.generate_samples(
            model, codec, formats, run_dir / "validity", prompts={f: [""] for f in formats},
            per_prompt=cfg.validity_samples, max_new_tokens=cfg.max_new_tokens, render_audio=False)
        metrics.update(samples_lib.summarize(generated))
        scores = [symusic.Score(s.files["midi"]) for s in generated if "midi" in s.files]
    metrics.update(musical_figures(lake, scores, cfg.reference_pieces))
    metrics = {k: float(v) for k, v in sorted(metrics.items()) if v is not None and math.isfinite(v)}
    tracking.log_metrics(tracking_uri, run["mlflow_run_id"], metrics, step=int(run["result"]["steps"]))
    if cfg.validity_samples:
        tracking.log_artifacts(tracking_uri, run["mlflow_run_id"], [run_dir / "validity"], "validity_samples")
    write_json(run_dir / "evaluation.json", metrics)
    return metrics


def split_pieces(lake: Lake, split: str, limit: int) -> list[tuple[dict, tuple[int, int]]]:
    """Note columns and time signature of up to ``limit`` pieces (by id) behind the split's
    unshifted documents in their own format, from the lake's note table."""
    docs = shard_doc_ids(shards.shard_paths(lake.path("shards"), split))
    aug = pl.read_parquet(lake.path("curated", "augmented.parquet"), columns=["aug_id", "piece_id", "format", "shift"])
    pieces = parsed.read_pieces(lake, ["piece_id", "format", "time_signature"])
    ids = (aug.filter(pl.col("aug_id").is_in(docs) & (pl.col("shift") == 0))
           .join(pieces, on=["piece_id", "format"], how="inner").sort("piece_id").head(limit))
    notes = parsed.scan_notes(lake).filter(pl.col("piece_id").is_in(ids["piece_id"].implode())).collect()
    by_piece = {k[0]: g for k, g in notes.partition_by("piece_id", as_dict=True).items()}
    out = []
    for pid, ts in ids.select("piece_id", "time_signature").iter_rows():
        if pid not in by_piece:
            continue
        num, _, den = (ts or "4/4").partition("/")
        cols = {c: by_piece[pid][c].to_numpy() for c in ("onset", "duration", "pitch", "track", "is_drum")}
        out.append((cols, (int(num), int(den)) if num.isdigit() and den.isdigit() else (4, 4)))
    return out


def musical_figures(lake: Lake, scores: list[symusic.Score], limit: int) -> dict[str, float]:
    """``mm_*`` / ``oa_*`` of the generated ``scores`` against the test split, ``oa_ref_*`` (valid
    against test) and ``mm_test_*``."""
    test = musical.set_metrics(split_pieces(lake, "test", limit))
    valid = musical.set_metrics(split_pieces(lake, "valid", limit))
    out = {f"mm_test_{k[3:]}": v for k, v in musical.means(test).items()}
    out.update({f"oa_ref_{k[3:]}": v for k, v in musical.compare(valid, test).items()})
    generated = [musical.score_notes(s) for s in scores if s.note_num() > 0]
    if generated:
        gen = musical.set_metrics(generated)
        out.update(musical.means(gen))
        out.update(musical.compare(gen, test))
    return out


def musical_table(metrics: dict[str, float]) -> list[dict]:
    """One row per musical metric: generated mean, test mean, overlap with test, reference."""
    rows = []
    for name in (*musical.METRICS, *musical.HISTOGRAMS):
        rows.append({"metric": name, "generated_mean": metrics.get(f"mm_{name}"),
                     "test_mean": metrics.get(f"mm_test_{name}"), "oa_generated_vs_test": metrics.get(f"oa_{name}"),
                     "oa_valid_vs_test": metrics.get(f"oa_ref_{name}")})
    return rows
