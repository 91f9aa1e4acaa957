"""Training throughput alone and beside one competing busy process, per thread setting.

    python bench/bench_busy.py [--rounds 3] [--steps 12]

Settings: ``project`` is what the training process does (``musicml.threads.limit_threads()``
before torch is imported: intra-op threads = available cores, inter-op 1, OpenMP's passive wait
policy); ``torch_default`` is torch left alone (thread env removed); ``one_thread`` is one
intra-op thread, for reference. Each measurement is a fresh child process (OpenMP reads its
wait policy when torch loads, so it cannot change inside one process) running the CPU preset's
training step (GPT 2 layers x 128, seq 256, 2,048-token batches, Muon + AdamW) on a fixed
random batch; "busy" adds a spinning Python process for the whole measurement. Rounds
alternate the settings so that all see the same machine load; the JSON gives the median
tokens/s per setting and condition, and the ratios to torch's default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from musicml.threads import THREAD_ENV_VARS, available_cores  # noqa: E402

SETTINGS = ("project", "torch_default", "one_thread")


def child(setting: str, steps: int) -> dict:
    """Runs in the child: set threads per ``setting``, time ``steps`` training steps."""
    if setting == "project":
        from musicml.threads import limit_threads

        limit_threads()
    import torch

    if setting == "one_thread":
        torch.set_num_threads(1)
    from musicml.models import build_model, model_config
    from musicml.train.optim import build_optimizers

    torch.manual_seed(0)
    model = build_model("gpt", model_config("gpt", 512, 256, depth=2))
    optimizers = build_optimizers(model)
    x, y = torch.randint(0, 512, (8, 256)), torch.randint(0, 512, (8, 256))
    times = []
    for _ in range(steps + 2):  # two warm-up steps
        t0 = time.perf_counter()
        model(x, y).backward()
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    usage = os.times()
    return {"tokens_per_s": 2048 / statistics.median(times[2:]),
            "threads": torch.get_num_threads(), "sys_s": usage.system, "user_s": usage.user}


def measure(setting: str, steps: int, busy: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*THREAD_ENV_VARS, "OMP_WAIT_POLICY")}
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        out = subprocess.run([sys.executable, __file__, "--child", setting, "--steps", str(steps)],
                             env=env, cwd=ROOT, capture_output=True, text=True, check=True,
                             timeout=900)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.steps)))
        return
    runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for busy in (False, True):
            for setting in SETTINGS:
                runs.setdefault(f"{setting}/{'busy' if busy else 'alone'}", []).append(
                    measure(setting, args.steps, busy))
    table = {}
    for key, rows in runs.items():
        table[key] = {"tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in rows)),
                      "threads": rows[0]["threads"],
                      "sys_s_median": round(statistics.median(r["sys_s"] for r in rows), 2),
                      "all_tokens_per_s": [round(r["tokens_per_s"]) for r in rows]}
    ratios = {f"{s}/{c}_over_torch_default": round(
        table[f"{s}/{c}"]["tokens_per_s"] / table[f"torch_default/{c}"]["tokens_per_s"], 2)
        for s in SETTINGS if s != "torch_default" for c in ("alone", "busy")}
    print(json.dumps({"benchmark": "train_throughput_busy", "available_cores": available_cores(),
                      "load_average_1m_at_end": round(os.getloadavg()[0], 2), "steps": args.steps,
                      "rounds": args.rounds, "results": table, "ratios": ratios}, indent=1))


if __name__ == "__main__":
    main()
