"""What Dagster costs: the asset graph under Dagster against the same library calls in a script.

    python bench/bench_pipeline.py            # small real corpus, both ways, same process
    python bench/bench_pipeline.py --main     # also the main job: the whole graph on the default
                                              # corpus via `dagster asset materialize` (minutes)

Both runs use the same corpus, the same config (a tiny model, in-process training so the two
measure the same work) and fresh lakes, alternating script and Dagster for ``--repeat`` rounds
(the first warms imports for both; the best round of each counts). Prints JSON: seconds per step
for the script, total seconds both ways and ``dagster_over_script`` (their ratio). With ``--main``: the main job's
wall time, val/test bits-per-byte and the unigram baseline from its MLflow run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY = {"n_layer": 1, "n_embd": 64, "n_head": 1, "seq_len": 128, "device_batch_size": 4,
        "total_batch_tokens": 512, "max_steps": 30, "eval_every": 15, "checkpoint_every": 15,
        "eval_tokens": 4096}
EVAL = {"max_tokens": 8192, "validity_samples": 2, "max_new_tokens": 64}
SAMPLES = {"per_prompt": 1, "max_new_tokens": 64}


def small_corpus(corpora: Path, raw: Path) -> int:
    raw.mkdir(parents=True, exist_ok=True)
    files = sorted((corpora / "midi" / "pop909").glob("*.mid"))[:4]
    files += sorted((corpora / "abc" / "music21").rglob("*.abc"), key=lambda p: (p.stat().st_size, p.name))[:40]
    files += sorted((corpora / "alphatex" / "alphatab-docs").glob("*.atex"))[:20]
    for i, f in enumerate(files):
        shutil.copyfile(f, raw / f"{i:03d}_{f.name}")
    return len(files)


def script_run(root: Path, raw: Path) -> dict[str, float]:
    from musicml import workflow
    from musicml.lake import Lake
    from musicml.train import TrainConfig

    lake = Lake.from_env(root, raw)
    uri = lake.mlflow_uri if "MLFLOW_TRACKING_URI" not in os.environ else f"sqlite:///{root / 'mlflow.db'}"
    times: dict[str, float] = {}

    def timed(name, fn, *a, **kw):
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        times[name] = round(time.perf_counter() - t0, 3)
        return out

    timed("raw_scores", workflow.ingest_step, lake, seed_default_corpus=False)
    timed("parsed_scores", workflow.parse_step, lake)
    timed("deduped_scores", workflow.dedup_step, lake)
    timed("augmented_scores", workflow.augment_step, lake)
    timed("splits", workflow.split_step, lake)
    timed("tokenizer", workflow.tokenizer_step, lake, vocab_size=2048)
    timed("token_shards", workflow.shards_step, lake)
    model = {k: TINY[k] for k in ("n_layer", "n_embd", "n_head")}
    cfg = TrainConfig(family="gpt", model=model, **{k: v for k, v in TINY.items() if k not in model})
    timed("trained_model", workflow.train_step, lake, cfg, tracking_uri=uri)
    timed("model_evaluation", workflow.evaluate_step, lake, tracking_uri=uri, **EVAL)
    timed("generated_samples", workflow.samples_step, lake, tracking_uri=uri, **SAMPLES)
    return times


def dagster_run(root: Path, raw: Path) -> float:
    import dagster as dg

    from pipelines.definitions import defs, main_assets

    os.environ["MUSICML_LAKE"], os.environ["MUSICML_RAW_DIR"] = str(root), str(raw)
    run_config = {"ops": {
        "raw_scores": {"config": {"seed_default_corpus": False}},
        "tokenizer": {"config": {"vocab_size": 2048}},
        "trained_model": {"config": {**TINY, "launcher": "inprocess"}},
        "model_evaluation": {"config": EVAL},
        "generated_samples": {"config": SAMPLES},
    }}
    t0 = time.perf_counter()
    with dg.instance_for_test() as instance:
        result = dg.materialize([*main_assets(defs), *defs.asset_checks], run_config=run_config,
                                resources=defs.resources, instance=instance)
    assert result.success
    return time.perf_counter() - t0


def main_job(work: Path) -> dict:
    """`dagster asset materialize --select '*'` on the default corpus, as the README's command runs it."""
    env = {**os.environ, "MUSICML_LAKE": str(work / "main_lake"), "DAGSTER_HOME": str(work / "dagster_home")}
    env.pop("MUSICML_RAW_DIR", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    (work / "dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "dagster.yaml", work / "dagster_home" / "dagster.yaml")
    dagster = Path(sys.executable).with_name("dagster")
    t0 = time.perf_counter()
    subprocess.run([str(dagster), "asset", "materialize", "--select", "*", "-m", "pipelines.definitions"],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    lake = work / "main_lake"
    latest = json.loads((lake / "models" / "latest.json").read_text())
    evaluation = json.loads((Path(latest["run_dir"]) / "evaluation.json").read_text())
    files = sum(1 for p in (lake / "raw").rglob("*") if p.is_file())
    return {"wall_s": round(wall, 1), "files": files, "steps": latest["result"]["steps"],
            "train_tokens_seen": latest["result"]["tokens_seen"],
            **{k: round(v, 4) for k, v in evaluation.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--main", action="store_true", help="also run the main job on the default corpus")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of script then Dagster (best of each)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="musicml-bench-"))
    out: dict = {}
    try:
        if args.corpora.exists():
            raw = work / "raw"
            out["files"] = small_corpus(args.corpora, raw)
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            # alternate the two ways, fresh lakes each time; the first round warms imports and
            # caches for both, the best round of each is compared
            script, dagster = [], []
            for i in range(args.repeat):
                times = script_run(work / f"script_lake{i}", raw)
                script.append((round(sum(times.values()), 2), times))
                dagster.append(round(dagster_run(work / f"dagster_lake{i}", raw), 2))
            best = min(script, key=lambda x: x[0])
            out["script_steps_s"] = best[1]
            out["script_s_rounds"] = [x[0] for x in script]
            out["dagster_s_rounds"] = dagster
            out["script_s"], out["dagster_s"] = best[0], min(dagster)
            out["dagster_over_script"] = round(out["dagster_s"] / out["script_s"], 3)
        if args.main:
            out["main_job"] = main_job(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
