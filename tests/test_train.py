"""Data packing, the training loop, checkpoints, resume and DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from musicml import checkpoint as ckpt
from musicml.shards import DataPosition, eval_batches, iter_batches, pack_window, shard_paths
from musicml.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
VOCAB, BOS = 24, 0
TOKEN_BYTES = np.array([0] + [1] * 20 + [2, 3, 0])  # 0 = BOS, 23 = another special token
TINY_GPT = {"n_layer": 1, "n_embd": 32, "n_head": 2}


def make_docs(n: int, seed: int = 0, lo: int = 4, hi: int = 40) -> list[list[int]]:
    """Documents of a learnable toy language: BOS, then a noisy counting walk."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        t, doc = int(rng.integers(1, 23)), [BOS]
        for _ in range(int(rng.integers(lo, hi))):
            doc.append(t)
            t = 1 + (t + (1 if rng.random() < 0.9 else 3)) % 22
        docs.append(doc)
    return docs


def write_split(root: Path, split: str, docs, n_shards: int = 1) -> None:
    (root / split).mkdir(parents=True, exist_ok=True)
    for k in range(n_shards):
        part = docs[k::n_shards]
        arr = pa.array(part, type=pa.list_(pa.int32()))
        pq.write_table(pa.table({"tokens": arr}), root / split / f"shard_{k:05d}.parquet",
                       compression="zstd")


@pytest.fixture
def shards(tmp_path) -> Path:
    root = tmp_path / "shards"
    write_split(root, "train", make_docs(120, seed=0), n_shards=2)
    write_split(root, "valid", make_docs(20, seed=1))
    return root


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(family="gpt", model=TINY_GPT, seq_len=16, device_batch_size=4, max_steps=8,
                eval_every=4, eval_tokens=256, checkpoint_every=4, keep_last=2, device="cpu",
                window_docs=32)
    base.update(kw)
    return TrainConfig(**base)


def run(cfg, shards, out, **kw):
    losses = {}

    def log(step, m):
        if "train_loss" in m:
            losses[step] = m["train_loss"]
        if kw.get("crash_at") == step:
            raise KeyboardInterrupt("simulated kill")

    result = train(cfg, shards, out, bos_id=BOS, token_bytes=TOKEN_BYTES, log=log,
                   should_stop=kw.get("should_stop"))
    return result, losses


# ---------------------------------------------------------------- data


def transitions(pairs_x, pairs_y):
    return Counter((a, b) for a, b in zip(pairs_x, pairs_y) if b >= 0 and b != BOS)


@pytest.mark.parametrize("seq_len", [8, 16, 64])
def test_eval_pass_scores_every_transition_once(shards, seq_len):
    docs = make_docs(20, seed=1)
    expected = Counter((a, b) for d in docs for a, b in zip(d[:-1], d[1:]))
    got = Counter()
    for x, y in eval_batches(shard_paths(shards, "valid"), 3, seq_len, window_docs=6):
        got += transitions(x.flatten().tolist(), y.flatten().tolist())
    assert got == expected


def test_rows_start_at_documents_and_are_full():
    docs = [np.array(d) for d in make_docs(200, seed=3, lo=3, hi=12)]
    rows = pack_window(docs, 33)
    assert all(r[0] == BOS for r, _, _ in rows)  # here every row begins at a doc start
    assert all(filled >= 32 for _, filled, _ in rows[:-1])  # full, but for a lone last slot
    assert sum(filled for _, filled, _ in rows) >= sum(len(d) for d in docs)  # nothing dropped


def test_batches_deterministic_and_resumable(shards):
    paths = shard_paths(shards, "train")
    a = iter_batches(paths, 4, 16, window_docs=32)
    first = [next(a) for _ in range(40)]  # > 1 epoch
    assert first[-1][2].epoch >= 1
    b = iter_batches(paths, 4, 16, window_docs=32)
    for (x1, y1, p1), (x2, y2, p2) in zip(first, (next(b) for _ in range(40))):
        assert torch.equal(x1, x2) and torch.equal(y1, y2) and p1 == p2
    for k in (0, 7, 29):
        pos = DataPosition.from_dict(json.loads(json.dumps(first[k][2].to_dict())))
        resumed = iter_batches(paths, 4, 16, start=pos, window_docs=32)
        for x, y, p in first[k + 1:k + 6]:
            x2, y2, p2 = next(resumed)
            assert torch.equal(x, x2) and torch.equal(y, y2) and p == p2


def test_ranks_partition_the_global_batch(shards):
    paths = shard_paths(shards, "train")
    single = iter_batches(paths, 4, 16, window_docs=32)
    r0 = iter_batches(paths, 2, 16, rank=0, world_size=2, window_docs=32)
    r1 = iter_batches(paths, 2, 16, rank=1, world_size=2, window_docs=32)
    for _ in range(10):
        x, _, p = next(single)
        x0, _, p0 = next(r0)
        x1, _, p1 = next(r1)
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1)
        assert p == p0 == p1


# ---------------------------------------------------------------- training


def test_config_json_roundtrip():
    cfg = tiny_cfg(time_budget_s=3.5, total_batch_tokens=128)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError):
        TrainConfig.from_dict({"nonsense": 1})


def test_train_learns_and_writes_checkpoints(shards, tmp_path):
    result, losses = run(tiny_cfg(max_steps=30, checkpoint_every=10, eval_every=10),
                         shards, tmp_path / "run")
    assert result.steps == 30 and result.resumed_from_step is None
    assert result.tokens_seen == 30 * 4 * 16
    assert losses[30] < losses[1] - 0.5
    assert result.val_bpb is not None and result.val_bpb < np.log2(VOCAB)
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step_000020.pt", "step_000030.pt"]  # keep_last=2
    assert Path(result.checkpoint).name == "step_000030.pt"
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("val_bpb_estimate" in e for e in log) and any("tokens_per_s" in e for e in log)


def test_gradient_accumulation_equivalence(shards, tmp_path):
    _, one = run(tiny_cfg(device_batch_size=4, total_batch_tokens=64, max_steps=5),
                 shards, tmp_path / "a")
    _, accum = run(tiny_cfg(device_batch_size=2, total_batch_tokens=64, max_steps=5),
                   shards, tmp_path / "b")
    for step in one:
        assert accum[step] == pytest.approx(one[step], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("family", ["gpt", "lstm"])
def test_kill_and_resume_continues_the_loss_curve(shards, tmp_path, family):
    model = TINY_GPT if family == "gpt" else {"embed_dim": 16, "hidden_dim": 32}
    cfg = tiny_cfg(family=family, model=model, max_steps=10, checkpoint_every=4, keep_last=3)
    _, full = run(cfg, shards, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        run(cfg, shards, tmp_path / "killed", crash_at=7)  # dies after step 7; last ckpt: 4
    result, resumed = run(cfg, shards, tmp_path / "killed")
    assert result.resumed_from_step == 4 and result.steps == 10
    assert sorted(resumed) == list(range(5, 11))
    for step, loss in resumed.items():
        assert loss == full[step]  # bitwise on CPU


def test_should_stop_checkpoints_and_resumes(shards, tmp_path):
    cfg = tiny_cfg(max_steps=9, checkpoint_every=0)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 5

    first, _ = run(cfg, shards, tmp_path / "r", should_stop=stop)
    assert first.steps == 5 and Path(first.checkpoint).name == "step_000005.pt"
    second, losses = run(cfg, shards, tmp_path / "r")
    assert second.resumed_from_step == 5 and second.steps == 9 and min(losses) == 6
    _, full = run(cfg, shards, tmp_path / "full")
    assert all(losses[s] == full[s] for s in losses)


def test_resume_refuses_a_different_model(shards, tmp_path):
    run(tiny_cfg(max_steps=2), shards, tmp_path / "r")
    with pytest.raises(ValueError, match="different model"):
        run(tiny_cfg(max_steps=4, model={"n_layer": 2, "n_embd": 32, "n_head": 2}), shards,
            tmp_path / "r")


def test_checkpoint_loads_weights_only(shards, tmp_path):
    result, _ = run(tiny_cfg(max_steps=3), shards, tmp_path / "r")
    raw = torch.load(result.checkpoint, weights_only=True)  # no code execution needed
    assert raw["family"] == "gpt" and raw["step"] == 3
    assert isinstance(raw["model_config"], dict) and isinstance(raw["data_position"], dict)
    model, meta = ckpt.load_model(result.checkpoint)
    assert meta["step"] == 3 and not model.training
    x = torch.randint(0, VOCAB, (2, 16))
    state = {k: v for k, v in raw["model"].items()}
    from musicml.models import build_model
    ref = build_model("gpt", raw["model_config"])
    ref.load_state_dict(state)
    torch.testing.assert_close(model(x), ref(x))
    leftovers = [p for p in (tmp_path / "r" / "checkpoints").iterdir() if p.suffix != ".pt"]
    assert leftovers == []  # atomic writes leave no temporary files


def test_rng_state_roundtrip():
    import random
    state = ckpt.rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_ddp_two_processes_match_one(shards, tmp_path):
    """torchrun with two gloo ranks x 2 micro-batches of 2 rows = one process with 2
    micro-batches of 4 rows: the same global batch of 8 rows gives the same losses."""
    cfg = tiny_cfg(device_batch_size=4, total_batch_tokens=128, max_steps=4, eval_every=2,
                   checkpoint_every=0)
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(tiny_cfg(device_batch_size=2, total_batch_tokens=128, max_steps=4,
                                 eval_every=2, checkpoint_every=0).to_json())
    tb_path = tmp_path / "tb.npy"
    np.save(tb_path, TOKEN_BYTES)
    _, single = run(cfg, shards, tmp_path / "single")  # 1 process: 2 micro-batches per step
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "musicml.train", "--config", str(cfg_path), "--shards", str(shards), "--out",
           str(tmp_path / "ddp"), "--bos", str(BOS), "--token-bytes", str(tb_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    log = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    ddp = {e["step"]: e["train_loss"] for e in log if "train_loss" in e}
    assert sorted(ddp) == sorted(single) == [1, 2, 3, 4]
    for step in single:
        assert ddp[step] == pytest.approx(single[step], rel=1e-4, abs=1e-5)
    single_bpb = [json.loads(line)["val_bpb_estimate"] for line in
                  (tmp_path / "single" / "log.jsonl").read_text().splitlines() if "val_bpb_estimate" in line]
    ddp_bpb = [e["val_bpb_estimate"] for e in log if "val_bpb_estimate" in e]
    assert ddp_bpb == pytest.approx(single_bpb, rel=1e-4)
    result = json.loads(proc.stdout.strip().splitlines()[-1])["result"]
    assert result["steps"] == 4
    assert sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").iterdir()) == ["step_000004.pt"]


def test_train_caps_oversubscribed_torch_threads(shards, tmp_path, monkeypatch):
    """In-process training with more torch threads than cores runs on as many threads as cores."""
    from musicml import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    monkeypatch.setattr("musicml.train.loop.available_cores", lambda: 1)
    torch.set_num_threads(2)
    result, _ = run(tiny_cfg(max_steps=1, eval_every=0, checkpoint_every=0), shards, tmp_path / "r")
    assert result.steps == 1
    assert torch.get_num_threads() == 1


def test_train_runs_in_named_phases(shards, tmp_path):
    """train() is the phases in order; they can be driven one by one, as train() does."""
    from musicml.train.loop import _Run

    run_ = _Run(tiny_cfg(max_steps=2, eval_every=0, checkpoint_every=0), None)
    run_.setup(shards, tmp_path / "r", BOS, TOKEN_BYTES)
    run_.build()
    run_.resume()
    run_.wrap()
    assert run_.step == 0 and run_.resumed_from is None and run_.grad_accum == 1
    result = run_.finish(*run_.loop(None))
    assert result.steps == 2 and result.val_bpb is not None
    assert Path(result.checkpoint).name == "step_000002.pt"
