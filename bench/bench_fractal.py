"""Fractal model speed: sampling seconds per sample for each num_iter setting, and training cells/s.

    python bench/bench_fractal.py                       # tiny config, CPU, random weights
    python bench/bench_fractal.py --preset gpu --device cuda --checkpoint CKPT.pt

Prints one JSON object: the model's parameters, for every ``num_iter`` setting the seconds per
sample (median of ``--repeats``, one roll of ``roll_len`` steps) and its ratio to the cheapest
setting measured in the same process, and training cells per second (real cells of the batch
over the optimizer step's wall time, median of ``--train-steps`` steps after one warm-up step).
Random rolls at the density of POP909 (~3 % of cells sounding) stand in for data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from musicml.device import pick_device, synchronize
from musicml.models.fractal import FractalConfig, FractalGen, count_parameters

SETTINGS = ([1, 1, 1], [2, 2, 2], [4, 4, 4], [8, 4, 4])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--checkpoint", help="a fractal checkpoint instead of random weights")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=8, help="training batch (rolls)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--train-steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = pick_device(a.device)
    if a.checkpoint:
        from musicml.checkpoint import load_model

        model, _ = load_model(a.checkpoint, device=dev)
    else:
        torch.manual_seed(0)
        model = FractalGen(FractalConfig.preset(a.preset)).to(dev)
    cfg = model.config
    out: dict = {"preset": a.preset, "device": str(dev), "parameters": count_parameters(model),
                 "roll_len": cfg.roll_len, "threads": torch.get_num_threads(), "sampling": []}
    model.eval()
    for num_iter in SETTINGS:
        times = []
        for r in range(a.repeats):
            torch.manual_seed(r)
            synchronize(dev)
            t0 = time.perf_counter()
            model.sample(cfg.roll_len, batch=1, num_iter=num_iter, cfg=1.0)
            synchronize(dev)
            times.append(time.perf_counter() - t0)
        out["sampling"].append({"num_iter": num_iter, "s_per_sample": round(statistics.median(times), 4)})
    base = out["sampling"][0]["s_per_sample"]
    for row in out["sampling"]:
        row["ratio_to_1_1_1"] = round(row["s_per_sample"] / base, 2)
    torch.manual_seed(0)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    roll = (torch.rand(a.batch, 128, cfg.roll_len, device=dev) < 0.03).long() * torch.randint(
        1, cfg.classes, (a.batch, 128, cfg.roll_len), device=dev)
    real = torch.ones_like(roll, dtype=torch.bool)
    rates = []
    for i in range(a.train_steps + 1):
        synchronize(dev)
        t0 = time.perf_counter()
        loss = model(roll, real)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        synchronize(dev)
        if i:  # the first step warms up
            rates.append(real.sum().item() / (time.perf_counter() - t0))
    out["train_cells_per_s"] = round(statistics.median(rates))
    out["train_batch"] = a.batch
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
