"""Generation throughput with and without the KV cache (musicml.generate.generate).

    python bench/bench_sampling.py                   # GPT d4, prints JSON
    python bench/bench_sampling.py --families gpt lstm --new-tokens 512
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musicml.device import pick_device  # noqa: E402
from musicml.generate import generate  # noqa: E402
from musicml.models import build_model, model_config  # noqa: E402


def timed(model, prompt, n, use_cache, device):
    generate(model, prompt, max_new_tokens=8, temperature=0, use_cache=use_cache)  # warm up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = generate(model, prompt, max_new_tokens=n, temperature=0, use_cache=use_cache)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(out) / (time.perf_counter() - t0), out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="auto")
    p.add_argument("--families", nargs="+", default=["gpt"])
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    results = []
    for family in args.families:
        overrides = {"depth": args.depth} if family == "gpt" else {}
        torch.manual_seed(0)
        model = build_model(family, model_config(family, args.vocab, args.seq_len, **overrides))
        with torch.no_grad():  # random read-out so greedy decoding is not all ties
            for prm in model.parameters():
                prm.normal_(0, 0.1)
        model.to(device).eval()
        prompt = torch.randint(1, args.vocab, (args.prompt_len,)).tolist()
        cached, a = timed(model, prompt, args.new_tokens, True, device)
        plain, b = timed(model, prompt, args.new_tokens, False, device)
        results.append({"family": family, "cache_tokens_per_s": cached,
                        "no_cache_tokens_per_s": plain, "speedup": cached / plain,
                        "identical_greedy_output": a == b, "prompt_len": args.prompt_len,
                        "new_tokens": args.new_tokens, "seq_len": args.seq_len,
                        "config": model_config(family, args.vocab, args.seq_len, **overrides)})
    print(json.dumps({"benchmark": "sampling_throughput", "device": str(device),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
