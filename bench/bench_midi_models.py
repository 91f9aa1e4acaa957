"""MIDI models on POP909 on one scale: bits per note, equal wall-clock budget, the same splits.

    python bench/bench_midi_models.py [--limit 300] [--budget-s 120] [--threads 1] [--work DIR]
    python bench/bench_midi_models.py --limit 300 --work DIR --prepare-only   # data and shards only

1. One base lake from the first ``--limit`` POP909 files (all 909 by default) with the
   pipeline's own steps: ingest, parse, dedup, augmentation ``-k..+k`` (``--max-shift``, 0 by
   default: no shifted copies), splits by work. Every row below reads these splits.
2. Per representation a sub-lake gets a copy of the base lake's ``parsed/`` and ``curated/``
   tables (so the same splits) and its own ``tokenizer_step`` + ``shards_step``:
   MIDI text with BPE (the tokenizer's defaults, ``music`` pre-tokenizer), MIDI text by
   character, REMI, REMI with miditok BPE (``--remi-bpe-vocab``, 2048). The base lake gets the
   piano rolls. A ``--work`` folder that already holds them (same data arguments) is reused, so
   ``--prepare-only`` can build the data ahead of the timed trainings.
3. Rows, each trained for ``--budget-s`` seconds (``TrainConfig.time_budget_s``; token models
   with ``lr_schedule="time"``) with ``workflow.train_step`` and scored over the whole valid and
   test splits with ``workflow.evaluate_step`` (the fractal row with ``fractal_evaluate_step``):
   GPT over MIDI text (BPE), GPT over REMI, GPT over REMI+BPE, char LSTM over MIDI text, the
   fractal model (``tiny`` preset, ``--fractal-batch`` rolls a step; its cosine schedule runs
   over ``max_steps``, which is set from a short calibration run (``--calibrate-frac`` of the
   budget) so the decay ends near the budget, with warmup over a tenth of it), and the baselines:
   the unigram per representation (the evaluation's ``unigram_*`` figures) and the piano roll's
   cell marginal (``baseline_*`` of the fractal evaluation).

Per row: model, representation, params, steps, wall_s, val/test bits per note and per byte
(text models: UTF-8 bytes; event models: base event tokens, see ``musicml.tokenizers.events``;
the fractal model: ``val_bpc`` / ``test_bpc`` bits per roll cell instead), and the note counts
the bits are divided by. Prints one JSON object (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicml import tracking, workflow  # noqa: E402
from musicml.checkpoint import load_model  # noqa: E402
from musicml.lake import Lake, read_json, write_json  # noqa: E402
from musicml.pianorolls.steps import as_fractal_config, fractal_evaluate_step, piano_rolls_step  # noqa: E402
from musicml.pianorolls.train import train_fractal  # noqa: E402
from musicml.train import TrainConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POP909 = ROOT.parent / "shared" / "corpora" / "midi" / "pop909"
EVAL = {"validity_samples": 0, "reference_pieces": 8}  # bits only: no samples, few musical refs
FIGURES = ("val_bpn", "test_bpn", "val_bpb", "test_bpb", "val_notes", "test_notes")


def log(obj: dict) -> None:
    print(json.dumps(obj), file=sys.stderr, flush=True)


def build_base(lake: Lake, files: list[Path], args: argparse.Namespace) -> dict:
    """Ingest → splits on the base lake (the tokenizer bench's data steps); returns the counts."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_tokenizers import build_lake

    return build_lake(lake, files, args)


def representation(base: Lake, work: Path, name: str, **tok) -> tuple[Lake, dict]:
    """A sub-lake with the base lake's splits and its own tokenizer and shards (reused when
    ``--work`` already holds them from an earlier run with the same data arguments)."""
    lake = Lake.from_env(work / name)
    info_path = lake.path("bench_representation.json")
    if info_path.exists():
        return lake, read_json(info_path)
    for folder in ("parsed", "curated"):
        shutil.copytree(base.path(folder), lake.dir(folder), dirs_exist_ok=True)
    t0 = time.perf_counter()
    codec = workflow.tokenizer_step(lake, **tok)
    manifest = workflow.shards_step(lake)
    info = {"tokenizer": {"kind": codec.kind, **tok}, "vocab_size": codec.vocab_size,
            "tokens": {s: v["tokens"] for s, v in manifest["splits"].items()},
            "documents_without_events": manifest.get("documents_without_events"),
            "seconds": round(time.perf_counter() - t0, 1)}
    write_json(info_path, info)
    log({"representation": {"name": name, **info}})
    return lake, info


def token_row(lake: Lake, model: str, rep: str, cfg: TrainConfig, uri: str) -> tuple[dict, dict]:
    """Train and evaluate one token model; (row, the evaluation's figures)."""
    t0 = time.perf_counter()
    run = workflow.train_step(lake, cfg, tracking_uri=uri, fresh=True)
    wall = time.perf_counter() - t0
    net, _ = load_model(run.checkpoint)
    t1 = time.perf_counter()
    ev = workflow.evaluate_step(lake, tracking_uri=uri, **EVAL)
    row = {"model": model, "representation": rep, "params": sum(p.numel() for p in net.parameters()),
           "steps": run.result["steps"], "tokens_seen": run.result["tokens_seen"],
           "wall_s": round(wall, 1), "train_s": round(run.result["elapsed_s"], 1),
           **{k: _round(ev.get(k)) for k in FIGURES}, "eval_s": round(time.perf_counter() - t1, 1)}
    log({"row": row})
    return row, ev


def fractal_row(lake: Lake, args: argparse.Namespace, uri: str) -> dict:
    """Piano rolls, a calibration run for the step rate, then the budgeted run and its evaluation."""
    rolls = read_json(lake.path("pianorolls", "summary.json"))
    base = TrainConfig(family="fractal", model={"preset": "tiny"}, device_batch_size=args.fractal_batch,
                       max_steps=10**9, eval_every=0, checkpoint_every=0, seed=0)
    calib_s = max(2.0, args.budget_s * args.calibrate_frac)
    probe = as_fractal_config(base)
    probe.time_budget_s = calib_s
    calib_dir = lake.path("models", "fractal-calibration")
    shutil.rmtree(calib_dir, ignore_errors=True)
    out = train_fractal(probe, lake.path("pianorolls"), calib_dir)
    rate = out["steps"] / max(out["elapsed_s"], 1e-9)
    steps = max(1, int(rate * args.budget_s))
    warmup = min(probe.warmup_steps, max(1, steps // 10))  # the preset's 20 would outlast a short budget
    cfg = TrainConfig(**{**base.to_dict(), "max_steps": steps, "time_budget_s": args.budget_s,
                         "warmup_steps": warmup})
    t0 = time.perf_counter()
    run = workflow.train_step(lake, cfg, tracking_uri=uri, fresh=True)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    ev = fractal_evaluate_step(lake, workflow.latest_run(lake), tracking_uri=uri, samples=0)
    row = {"model": "fractal tiny", "representation": "piano roll (16th grid)", "params": run.result["parameters"],
           "steps": run.result["steps"], "planned_steps": steps, "warmup_steps": warmup,
           "calibration_steps_per_s": round(rate, 3),
           "cells_seen": run.result["tokens_seen"], "wall_s": round(wall, 1),
           "train_s": round(run.result["elapsed_s"], 1),
           **{k: _round(ev.get(k)) for k in ("val_bpn", "test_bpn", "val_bpc", "test_bpc", "val_notes",
                                              "test_notes", "baseline_val_bpn", "baseline_test_bpn",
                                              "baseline_val_bpc", "baseline_test_bpc")},
           "eval_s": round(time.perf_counter() - t1, 1), "rolls": rolls["splits"]}
    log({"row": row})
    return row


def unigram_row(rep: str, ev: dict) -> dict:
    return {"model": "unigram", "representation": rep, "params": None, "steps": 0, "wall_s": 0.0,
            **{k: _round(ev.get(f"unigram_{k}")) for k in ("val_bpn", "test_bpn", "val_bpb", "test_bpb")}}


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=POP909)
    ap.add_argument("--limit", type=int, default=None, help="first N files (default: all)")
    ap.add_argument("--budget-s", type=float, default=120.0, help="training wall seconds per model")
    ap.add_argument("--max-shift", type=int, default=0, help="augmentation -k..+k semitones (0: none)")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--remi-bpe-vocab", type=int, default=2048,
                    help="miditok BPE vocabulary (the library's 8192 outgrows a few-100k-token corpus)")
    ap.add_argument("--lstm-hidden", type=int, default=512)
    ap.add_argument("--fractal-batch", type=int, default=8)
    ap.add_argument("--calibrate-frac", type=float, default=0.1,
                    help="fractal: seconds of the step-rate probe as a fraction of the budget")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: steady on a shared, loaded CPU; 0: torch's default)")
    ap.add_argument("--work", type=Path, default=None,
                    help="work folder; data, tokenizers and shards already there (same data arguments) are reused")
    ap.add_argument("--prepare-only", action="store_true", help="build the lakes, tokenizers and shards, train nothing")
    args = ap.parse_args()
    files = sorted(args.corpus.glob("*.mid"))[: args.limit]
    if not files:
        sys.exit(f"no .mid files in {args.corpus} (POP909 lives in ../shared/corpora/midi/pop909)")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="musicml-midi-models-"))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    t0 = time.perf_counter()
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "threads": torch.get_num_threads(),
                    "work": str(work)}
    base = Lake.from_env(work / "base")
    data_key = {k: str(getattr(args, k)) for k in ("corpus", "limit", "max_shift", "split_seed")}
    data_path = base.path("bench_data.json")
    if data_path.exists():
        stored = read_json(data_path)
        if stored["key"] != data_key:
            sys.exit(f"{work} was built with {stored['key']}, not {data_key}; use another --work")
        report["data"] = stored["data"]
    else:
        report["data"] = build_base(base, files, args)
        report["data"]["piano_rolls"] = piano_rolls_step(base)["splits"]
        write_json(data_path, {"key": data_key, "data": report["data"]})
        log({"data": report["data"]})
    budget = {"max_steps": 10**9, "time_budget_s": args.budget_s, "lr_schedule": "time", "eval_every": 0,
              "eval_tokens": 4096,  # the end-of-training estimate only; the rows are scored on whole splits
              "checkpoint_every": 0, "seed": 0}
    gpt = {"family": "gpt", "model": {"n_layer": 2, "n_embd": 128, "n_head": 2}, "seq_len": 256,
           "device_batch_size": 8, **budget}
    lstm = {"family": "lstm", "model": {"embed_dim": 256, "hidden_dim": args.lstm_hidden}, "seq_len": 256,
            "device_batch_size": 16, "lr": 5e-3, **budget}
    plan = [("GPT d2", "MIDI text + BPE", {"kind": "bpe"}, gpt),
            ("GPT d2", "REMI", {"kind": "remi"}, gpt),
            ("GPT d2", "REMI + miditok BPE", {"kind": "remi", "miditok_bpe": True, "vocab_size": args.remi_bpe_vocab},
             gpt),
            ("LSTM", "MIDI text by char", {"kind": "char"}, lstm)]
    lakes = [representation(base, work, f"rep{i}", **tok) for i, (_, _, tok, _) in enumerate(plan)]
    report["representations"] = [{"representation": p[1], **info} for p, (_, info) in zip(plan, lakes)]
    if args.prepare_only:
        print(json.dumps(report, indent=2))
        return
    tracking.client(uri).search_experiments()  # create the MLflow database before any row's clock
    rows, unigrams = [], []
    for (model, rep, _, cfg), (lake, _) in zip(plan, lakes):
        row, ev = token_row(lake, model, rep, TrainConfig.from_dict(cfg), uri)
        rows.append(row)
        unigrams.append(unigram_row(rep, ev))
    rows.append(fractal_row(base, args, uri))
    unigrams.append({"model": "unigram (cell marginal)", "representation": rows[-1]["representation"],
                     "params": None, "steps": 0, "wall_s": 0.0,
                     **{k: rows[-1][f"baseline_{k}"] for k in ("val_bpn", "test_bpn", "val_bpc", "test_bpc")}})
    report["rows"] = rows + unigrams
    report["model_shapes"] = {"gpt": gpt["model"], "lstm": lstm["model"], "fractal": "tiny preset"}
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
