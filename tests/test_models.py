"""Model families, the registry, the optimizers and bits per byte."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from musicml.evaluate import bits_per_byte, token_counts, unigram_bpb
from musicml.models import MODEL_FAMILIES, GPTConfig, build_model, model_config
from musicml.shards import shard_paths
from musicml.train.optim import Muon, build_optimizers, lr_multiplier, zeropower_via_newtonschulz5

pytestmark = pytest.mark.usefixtures("one_torch_thread")

V, T = 37, 16
SMALL = {"gpt": {"depth": 2}, "bigram": {}, "lstm": {"embed_dim": 16, "hidden_dim": 32}}


def small_model(family: str, vocab: int = V, seq_len: int = T):
    torch.manual_seed(0)
    return build_model(family, model_config(family, vocab, seq_len, **SMALL[family]))


def write_shards(root, split, docs):
    (root / split).mkdir(parents=True, exist_ok=True)
    arr = pa.array([list(d) for d in docs], type=pa.list_(pa.int32()))
    pq.write_table(pa.table({"tokens": arr}), root / split / "shard_00000.parquet",
                   compression="zstd")


def test_gpt_depth_dial():
    d4 = GPTConfig.from_depth(4, vocab_size=100, seq_len=64)
    assert (d4.n_layer, d4.n_embd, d4.n_head, d4.head_dim) == (4, 128, 2, 64)
    d12 = GPTConfig.from_depth(12, vocab_size=100)
    assert (d12.n_layer, d12.n_embd, d12.n_head) == (12, 384, 6)
    assert GPTConfig.from_depth(3, 100).n_embd == 128  # 96 rounded up to a head_dim multiple
    explicit = model_config("gpt", 100, 64, n_layer=3, n_embd=96, n_head=3)
    assert (explicit["n_layer"], explicit["n_embd"], explicit["n_head"]) == (3, 96, 3)
    assert model_config("gpt", 100, 64, depth=6)["n_embd"] == 192


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
def test_registry_json_roundtrip(family):
    cfg = model_config(family, V, T, **SMALL[family])
    rebuilt = json.loads(json.dumps(cfg))
    a, b = small_model(family), build_model(family, rebuilt)
    assert type(a) is type(b) and a.family == family
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    with pytest.raises(ValueError):
        build_model(family, {**cfg, "nonsense": 1})


def test_unknown_family():
    with pytest.raises(ValueError, match="unknown model family"):
        model_config("transformerxl", V, T)


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
def test_shapes_and_loss(family):
    model = small_model(family)
    x = torch.randint(0, V, (3, T))
    y = torch.randint(0, V, (3, T))
    logits = model(x)
    assert logits.shape == (3, T, V) and logits.dtype == torch.float32
    loss = model(x, y)
    assert loss.shape == () and torch.isfinite(loss)
    per_token = model(x, y, loss_reduction="none")
    assert per_token.shape == (3, T)
    torch.testing.assert_close(per_token.mean(), loss)
    y_masked = y.clone()
    y_masked[:, T // 2:] = -1
    masked = model(x, y_masked, loss_reduction="none")
    assert (masked[:, T // 2:] == 0).all()
    torch.testing.assert_close(model(x, y_masked), per_token[:, : T // 2].mean())
    if family in ("gpt", "bigram"):  # zero-initialized read-out: uniform prediction
        assert abs(loss.item() - math.log(V)) < 1e-5
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_gpt_is_causal():
    model = small_model("gpt")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    x = torch.randint(0, V, (1, T))
    x2 = x.clone()
    x2[0, -1] = (x[0, -1] + 1) % V
    with torch.no_grad():
        a, b = model(x), model(x2)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_gpt_kv_cache_matches_full_forward():
    model = small_model("gpt")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    x = torch.randint(0, V, (2, 12))
    with torch.no_grad():
        full = model(x)
        cache = model.new_cache(2, 16)
        prefill = model(x[:, :5], cache=cache)  # prefill
        chunk = model(x[:, 5:8], cache=cache)  # a chunk after a cached prefix
        steps = [model(x[:, t:t + 1], cache=cache) for t in range(8, 12)]
    got = torch.cat([prefill, chunk, *steps], dim=1)
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)
    assert cache.pos == 12


def test_no_biases_and_untied():
    model = small_model("gpt")
    names = [n for n, _ in model.named_parameters()]
    assert not any(n.endswith("bias") for n in names)
    assert model.wte.weight.data_ptr() != model.lm_head.weight.data_ptr()
    assert all(p.ndim == 2 for p in model.parameters())  # parameter-free RMSNorm


def test_tiny_gpt_overfits():
    torch.manual_seed(0)
    model = build_model("gpt", model_config("gpt", V, 32, depth=2))
    opts = build_optimizers(model)
    data = torch.randint(1, V, (4, 33))
    x, y = data[:, :-1], data[:, 1:]
    for _ in range(80):
        loss = model(x, y)
        loss.backward()
        for o in opts:
            o.step()
        model.zero_grad(set_to_none=True)
    assert loss.item() < 0.05, loss.item()


@pytest.mark.parametrize("family", ["bigram", "lstm"])
def test_baselines_learn(family):
    model = small_model(family)
    opt = build_optimizers(model, lr=0.05)[0]
    assert isinstance(opt, torch.optim.AdamW)
    x = torch.arange(T).repeat(2, 1) % V
    y = (x + 1) % V
    first = model(x, y).item()
    for _ in range(60):
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert loss.item() < 0.5 * first


def test_gpt_optimizer_split():
    model = small_model("gpt")
    adamw, muon = build_optimizers(model)
    muon_ids = {id(p) for g in muon.param_groups for p in g["params"]}
    adam_ids = {id(p) for g in adamw.param_groups for p in g["params"]}
    assert id(model.wte.weight) in adam_ids and id(model.lm_head.weight) in adam_ids
    assert muon_ids == {id(p) for p in model.blocks.parameters()}
    assert not muon_ids & adam_ids
    assert len(muon_ids | adam_ids) == len(list(model.parameters()))


def test_newton_schulz_orthogonalizes():
    torch.manual_seed(0)
    g = torch.randn(64, 32)
    s = torch.linalg.svdvals(zeropower_via_newtonschulz5(g, steps=5))
    assert s.min() > 0.5 and s.max() < 1.3  # Muon's NS lands singular values near 1


def test_muon_batched_step_matches_one_matrix_at_a_time():
    # matrices of one shape are orthogonalized as a batch; each must move as if alone
    torch.manual_seed(0)
    shapes = [(16, 16), (16, 16), (48, 16), (16, 48), (16, 16)]
    params = [torch.nn.Parameter(torch.randn(*s)) for s in shapes]
    grads = [torch.randn(*s) for s in shapes]
    before = [p.detach().clone() for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    Muon(params, lr=0.1, momentum=0.9).step()
    for p, b, g in zip(params, before, grads):
        buf = g * (1 - 0.9)  # first step: momentum buffer lerped from zero
        u = zeropower_via_newtonschulz5(g.lerp(buf, 0.9))
        expected = b - 0.1 * max(1.0, p.size(0) / p.size(1)) ** 0.5 * u
        torch.testing.assert_close(p.detach(), expected, atol=1e-5, rtol=1e-5)


def test_lr_multiplier():
    assert lr_multiplier(0, 100, warmup=10) == pytest.approx(0.1)
    assert lr_multiplier(9, 100, warmup=10) == 1.0
    assert lr_multiplier(50, 100, warmup=10, warmdown_frac=0.2) == 1.0
    assert lr_multiplier(80, 100, warmdown_frac=0.2) == 1.0
    assert lr_multiplier(90, 100, warmdown_frac=0.2) == pytest.approx(0.5)
    assert lr_multiplier(100, 100, warmdown_frac=0.2, final_frac=0.1) == pytest.approx(0.1)
    assert lr_multiplier(99, 100, warmdown_frac=0.0) == 1.0


def test_bits_per_byte_against_hand_computation(tmp_path):
    vocab, bos = 6, 0
    token_bytes = np.array([0, 1, 2, 1, 3, 0])  # 0 = BOS, 5 = another special token
    rng = np.random.default_rng(0)
    docs = [[bos, *rng.integers(1, vocab, size=rng.integers(3, 9)).tolist()] for _ in range(30)]
    write_shards(tmp_path, "valid", docs)
    model = build_model("bigram", model_config("bigram", vocab, 16))
    with torch.no_grad():
        model.table.weight.copy_(torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(1)))
    logp = torch.log_softmax(model.table.weight.detach().double(), dim=-1).numpy()
    nats = nbytes = 0.0
    for d in docs:  # every doc fits a row, so every in-document transition is scored once
        for prev, tgt in zip(d[:-1], d[1:]):
            if token_bytes[tgt] > 0:
                nats -= logp[prev, tgt]
                nbytes += token_bytes[tgt]
    expected = nats / (math.log(2) * nbytes)
    got = bits_per_byte(model, shard_paths(tmp_path, "valid"), token_bytes, seq_len=16,
                        batch_size=3)
    assert got == pytest.approx(expected, rel=1e-6)
    # a different packing geometry scores the same targets
    got2 = bits_per_byte(model, shard_paths(tmp_path, "valid"), token_bytes, seq_len=40,
                         batch_size=2, window_docs=7)
    assert got2 == pytest.approx(expected, rel=1e-6)
    # rows shorter than some documents: long documents are split, still every target once
    got3 = bits_per_byte(model, shard_paths(tmp_path, "valid"), token_bytes, seq_len=4,
                         batch_size=5)
    assert got3 == pytest.approx(expected, rel=1e-6)


def test_unigram_bpb_and_counts(tmp_path):
    token_bytes = np.array([0, 1, 2, 1])
    write_shards(tmp_path, "train", [[0, 1, 1, 2], [0, 1, 3]])
    write_shards(tmp_path, "valid", [[0, 2, 3, 3]])
    counts = token_counts(shard_paths(tmp_path, "train"), 4)
    assert counts.tolist() == [2, 3, 1, 1]
    p = (counts + 1) / (counts.sum() + 4)  # add-one smoothing
    expected = -(math.log(p[2]) + 2 * math.log(p[3])) / (math.log(2) * (2 + 1 + 1))
    got = unigram_bpb(shard_paths(tmp_path, "train"), shard_paths(tmp_path, "valid"), token_bytes)
    assert got == pytest.approx(expected)


def test_batched_newton_schulz_equals_one_matrix_at_a_time():
    torch.manual_seed(0)
    g = torch.randn(3, 16, 40)
    batched = zeropower_via_newtonschulz5(g)
    for i in range(3):
        torch.testing.assert_close(batched[i], zeropower_via_newtonschulz5(g[i]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(zeropower_via_newtonschulz5(g.mT), batched.mT, atol=1e-5, rtol=1e-5)


def test_attention_fused_qkv_equals_three_projections():
    """One q/k/v matmul with rotary and QK norm on q and k together is the three-projection math."""
    from musicml.models.gpt import GPT, apply_rotary, norm

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, seq_len=16, n_layer=1, n_embd=64, n_head=2))
    attn = model.blocks[0].attn
    for lin in (attn.c_q, attn.c_k, attn.c_v, attn.c_proj):
        torch.nn.init.normal_(lin.weight, std=0.1)
    x = torch.randn(2, 16, 64)
    cos, sin = model.cos[:, :16], model.sin[:, :16]
    q = norm(apply_rotary(attn.c_q(x).view(2, 16, 2, 32), cos, sin)).transpose(1, 2)
    k = norm(apply_rotary(attn.c_k(x).view(2, 16, 2, 32), cos, sin)).transpose(1, 2)
    v = attn.c_v(x).view(2, 16, 2, 32).transpose(1, 2)
    y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    expected = attn.c_proj(y.transpose(1, 2).reshape(2, 16, 64))
    torch.testing.assert_close(attn(x, cos, sin, None), expected, atol=1e-5, rtol=1e-5)


def test_apply_rotary_rotates_half_pairs():
    """apply_rotary's three ops are the rotation of (x[i], x[i + D/2]) by position * frequency."""
    from musicml.models.gpt import apply_rotary, rotary_tables

    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 16)
    cos, sin = rotary_tables(8, 16, 10000.0)
    inv_freq = 1.0 / (10000.0 ** (torch.arange(0, 16, 2).float() / 16))
    angle = torch.outer(torch.arange(8).float(), inv_freq)[None, :, None, :]
    x1, x2 = x[..., :8], x[..., 8:]
    expected = torch.cat([x1 * angle.cos() + x2 * angle.sin(), x2 * angle.cos() - x1 * angle.sin()], -1)
    torch.testing.assert_close(apply_rotary(x, cos, sin), expected, atol=1e-6, rtol=1e-6)
