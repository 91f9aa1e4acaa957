"""``python -m musicml.train``: train on a lake's shards (or explicit files), also under torchrun.

    python -m musicml.train --preset cpu --max-steps 50          # on $MUSICML_LAKE (data_lake)
    python -m musicml.train --lake my_lake --preset gpu --model '{"n_layer": 6}'
    torchrun --nproc_per_node 2 -m musicml.train --config cfg.json --shards DIR --bos 0 \\
        --token-bytes tb.npy --out DIR                           # explicit files, as the launchers do

Every ``TrainConfig`` field is a flag (generated from the dataclass). The config is the
defaults, then the preset, then ``--config FILE.json``, then the flags; with ``--config`` and no
``--preset`` the file is taken as it is. From a lake, the shards, the BOS id (the tokenizer's
``tokenizer_info.json``) and the token byte lengths are found under it, and the run folder is
``<lake>/models/cli/<run name>`` (re-running the same command resumes it). Each step prints a
JSON line; the last line is ``{"result": ...}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from musicml import env, settings
from musicml.train.config import PRESET_CHOICES, PRESETS, TrainConfig, preset_config

TOKENIZER_INFO = ("tokenizer", "tokenizer_info.json")
TOKEN_BYTES = ("tokenizer", "token_bytes.npy")


def parser() -> argparse.ArgumentParser:
    presets = "\n".join(f"  {name:4} {json.dumps(values)}" for name, values in PRESETS.items())
    p = argparse.ArgumentParser(
        prog="python -m musicml.train", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a musicml model on token shards (a lake's, or explicit files).",
        epilog=f"presets (overrides of the TrainConfig defaults; 'model' applies to the GPT family only):\n"
               f"{presets}\n  auto gpu when CUDA is available, else cpu")
    p.add_argument("--preset", choices=PRESET_CHOICES, default=None,
                   help="training preset (default: auto, or none with --config)")
    p.add_argument("--lake", default=None,
                   help=f"lake whose shards and tokenizer to use (default: ${env.LAKE} or {env.DEFAULT_LAKE})")
    p.add_argument("--config", default=None, help="TrainConfig as a JSON file (fields not in it: defaults)")
    p.add_argument("--out", default=None, help="run folder: checkpoints/, log.jsonl (default: <lake>/models/cli/<run>)")
    p.add_argument("--shards", default=None, help="explicit shard folder with train/ and valid/ (needs --bos, --token-bytes, --out)")
    p.add_argument("--bos", type=int, default=None, help="BOS token id (with --shards)")
    p.add_argument("--token-bytes", default=None, help=".npy of per-token UTF-8 byte lengths (with --shards)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and paths as JSON; do not train")
    settings.add_arguments(p, TrainConfig)
    return p


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < preset < ``--config`` file < flags."""
    flags = settings.overrides_from_args(args, TrainConfig)
    from_file = json.loads(Path(args.config).read_text(encoding="utf-8")) if args.config else {}
    if not isinstance(from_file, dict):
        raise ValueError(f"{args.config}: expected a JSON object of TrainConfig fields")
    if args.config and args.preset is None:
        return dataclasses.replace(TrainConfig.from_dict(from_file), **flags)
    return preset_config(args.preset or "auto", **{**from_file, **flags})


def resolve_data(args: argparse.Namespace, cfg: TrainConfig, p: argparse.ArgumentParser) -> dict:
    """Shard folder, BOS id, token-bytes file and run folder, from explicit flags or the lake."""
    if args.shards is not None:
        missing = [flag for flag, value in (("--bos", args.bos), ("--token-bytes", args.token_bytes),
                                            ("--out", args.out)) if value is None]
        if missing:
            p.error(f"--shards needs {', '.join(missing)} too (or leave --shards out to use a lake)")
        return {"shards": Path(args.shards), "bos_id": args.bos, "token_bytes": Path(args.token_bytes),
                "out": Path(args.out)}
    from musicml.lake import Lake, read_json
    from musicml.shards import read_manifest
    from musicml.workflow import run_name

    lake = Lake.from_env(args.lake)
    lake.pull()  # a lake on object storage: its local copy brought up to date (musicml.lake_sync)
    shard_dir, info_path = lake.path("shards"), lake.path(*TOKENIZER_INFO)
    if not (shard_dir / "manifest.json").is_file() or not info_path.is_file():
        p.error(f"no shards and tokenizer in the lake {lake.root}: build them first "
                "(e.g. `dagster asset materialize --select '+token_shards' -m pipelines.definitions`), "
                "or pass --shards/--bos/--token-bytes/--out")
    manifest = read_manifest(shard_dir)
    bos_id = int(read_json(info_path)["bos_id"]) if args.bos is None else args.bos
    token_bytes = Path(args.token_bytes) if args.token_bytes else lake.path(*TOKEN_BYTES)
    out = Path(args.out) if args.out else lake.path("models", "cli", run_name(cfg, manifest["digest"]))
    return {"shards": shard_dir, "bos_id": bos_id, "token_bytes": token_bytes, "out": out}


def resolve_warm_start(args: argparse.Namespace, cfg: TrainConfig, out: Path) -> None:
    """Write ``out/warm_start.json``, the checkpoint ``--warm-start`` names, as ``train_step``
    does (the loop reads it); from a lake only: with ``--shards`` there is no latest training
    or champion to look up, and the loop starts fresh saying so."""
    if cfg.warm_start == "none" or args.shards is not None:
        return
    from musicml.lake import Lake, read_json, write_json
    from musicml.shards import read_manifest
    from musicml.workflow import resolve_warm_start as resolve

    lake = Lake.from_env(args.lake)
    digest = read_json(lake.path(*TOKENIZER_INFO)).get("digest", "")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "warm_start.json", resolve(lake, cfg, digest, read_manifest(lake.path("shards")), out,
                                                tracking_uri=env.tracking_uri() or lake.mlflow_uri))


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        cfg = resolve_config(args)
    except (ValueError, TypeError, OSError) as e:
        p.error(str(e))
    data = resolve_data(args, cfg, p)
    if args.dry_run:
        print(json.dumps({"config": cfg.to_dict(), **{k: str(v) if isinstance(v, Path) else v
                                                      for k, v in data.items()}}, sort_keys=True))
        return 0

    import numpy as np

    from musicml.train.loop import train

    rank = env.distributed().rank
    if rank == 0:
        print(f"training {cfg.family} {cfg.model or '(family defaults)'} for {cfg.max_steps} steps: "
              f"{data['shards']} -> {data['out']}", file=sys.stderr, flush=True)

    def log(step: int, metrics: dict) -> None:
        print(json.dumps({"step": step, **metrics}), flush=True)

    if rank == 0:
        resolve_warm_start(args, cfg, data["out"])
    result = train(cfg, data["shards"], data["out"], bos_id=data["bos_id"],
                   token_bytes=np.load(data["token_bytes"], allow_pickle=False), log=log)
    if rank == 0:
        print(json.dumps({"result": result.to_dict()}), flush=True)
        if args.shards is None:
            from musicml.lake import Lake

            Lake.from_env(args.lake).push()  # the run's folder back to a lake on object storage
    return 0
