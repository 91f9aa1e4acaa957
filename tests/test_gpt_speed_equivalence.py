"""The GPT's fused ops (hand-written backwards, fewer passes) give the same outputs and gradients
as the formulas they replace, op by op and for the whole model on the same weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from musicml.models.gpt import (
    GPT,
    GPTConfig,
    apply_rotary,
    lm_loss,
    norm,
    relu_squared,
    rotary_tables,
    softcap_head,
)


def old_norm(x):
    return x * torch.rsqrt(x.square().mean(-1, keepdim=True) + torch.finfo(x.dtype).eps)


def old_rotary(x, cos, sin):
    return torch.addcmul(x * cos, x.roll(x.shape[-1] // 2, dims=-1), sin)


def old_softcap_logits(h, weight, cap):
    logits = F.linear(h, weight).float()
    return cap * torch.tanh(logits / cap)


def grads(f, *inputs, upstream):
    """f(*inputs) and the gradients of sum(f * upstream) with respect to every input."""
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = f(*leaves)
    out.backward(upstream)
    return out.detach(), [t.grad for t in leaves]


def assert_same(f_new, f_old, *inputs, atol=1e-5, rtol=1e-5):
    torch.manual_seed(1)
    upstream = torch.randn_like(f_old(*inputs))
    out_new, g_new = grads(f_new, *inputs, upstream=upstream)
    out_old, g_old = grads(f_old, *inputs, upstream=upstream)
    torch.testing.assert_close(out_new, out_old, atol=atol, rtol=rtol)
    for a, b in zip(g_new, g_old):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol)


def test_rms_norm_matches_written_out_formula():
    torch.manual_seed(0)
    for shape in [(2, 7, 32), (2, 5, 4, 16)]:  # the residual stream and q/k heads
        x = torch.randn(*shape) * 3
        assert_same(norm, old_norm, x)
        assert_same(norm, old_norm, x.double(), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(norm(x), F.rms_norm(x, (x.size(-1),)), atol=1e-6, rtol=1e-6)


def test_relu_squared_matches_autograd():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 64)
    assert_same(relu_squared, lambda t: F.relu(t).square(), x)
    assert_same(relu_squared, lambda t: F.relu(t).square(), x.double(), atol=1e-12, rtol=1e-12)


def test_rotary_backward_is_the_inverse_rotation():
    torch.manual_seed(0)
    cos, sin = rotary_tables(9, 16, 10000.0)
    x = torch.randn(2, 9, 3, 16)
    assert_same(lambda t: apply_rotary(t, cos, sin), lambda t: old_rotary(t, cos, sin), x)
    # a strided view, as the attention passes it (q and k of a fused q/k/v projection)
    qkv = torch.randn(2, 9, 3 * 3 * 16).view(2, 9, 9, 16)
    qk = qkv.split([6, 3], dim=2)[0]
    cos, sin = rotary_tables(9, 16, 10000.0)
    assert_same(lambda t: apply_rotary(t, cos, sin), lambda t: old_rotary(t, cos, sin), qk)


def test_softcap_head_matches_linear_then_softcap():
    torch.manual_seed(0)
    h, w = torch.randn(2, 6, 32), torch.randn(50, 32)
    assert_same(lambda a, b: softcap_head(a, b, 15.0), lambda a, b: old_softcap_logits(a, b, 15.0), h, w)
    assert_same(lambda a, b: softcap_head(a, b, 2.0), lambda a, b: old_softcap_logits(a, b, 2.0),
                h.double(), w.double(), atol=1e-12, rtol=1e-12)


def test_softcap_head_under_autocast_matches_autograd():
    """Under bf16 autocast the fused head's matmuls run in bf16, as F.linear's would."""
    torch.manual_seed(0)
    h, w = torch.randn(2, 6, 32), torch.randn(50, 32) * 0.2

    def under_autocast(f):
        def run(a, b):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return f(a, b, 15.0)
        return run

    out = under_autocast(softcap_head)(h, w)
    assert out.dtype == torch.float32
    assert_same(under_autocast(softcap_head), under_autocast(old_softcap_logits), h, w, atol=3e-2, rtol=3e-2)


def old_gpt_loss(model: GPT, idx, targets):
    """The GPT's forward as written before the fused ops: three projections, slicing, autograd
    norms, ReLU² and softcap."""
    cfg = model.config
    B, T = idx.shape
    H, D, C = cfg.n_head, cfg.head_dim, cfg.n_embd
    cos, sin = model.cos[:, :T], model.sin[:, :T]
    x = old_norm(model.wte(idx))
    for block in model.blocks:
        a = block.attn
        h = old_norm(x)
        q = old_norm(old_rotary(a.c_q(h).view(B, T, H, D), cos, sin)).transpose(1, 2)
        k = old_norm(old_rotary(a.c_k(h).view(B, T, H, D), cos, sin)).transpose(1, 2)
        v = a.c_v(h).view(B, T, H, D).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + a.c_proj(y.transpose(1, 2).reshape(B, T, C))
        x = x + block.mlp.c_proj(F.relu(block.mlp.c_fc(old_norm(x))).square())
    logits = model.lm_head(old_norm(x)).float()
    if cfg.softcap:
        logits = cfg.softcap * torch.tanh(logits / cfg.softcap)
    return lm_loss(logits, targets)


def test_gpt_loss_and_gradients_match_the_unfused_model():
    for softcap in (15.0, 0.0):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=97, seq_len=24, n_layer=2, n_embd=64, n_head=2, softcap=softcap))
        with torch.no_grad():  # nanochat's init zeroes the output projections: give them weights
            for p in model.parameters():
                p.normal_(0, 0.2)
        idx = torch.randint(0, 97, (3, 24))
        targets = torch.randint(0, 97, (3, 24))
        targets[0, :5] = -1
        results = []
        for unfused in (False, True):
            model.zero_grad(set_to_none=True)
            loss = old_gpt_loss(model, idx, targets) if unfused else model(idx, targets)
            loss.backward()
            results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
        (loss_new, g_new), (loss_old, g_old) = results
        torch.testing.assert_close(loss_new, loss_old, atol=1e-5, rtol=1e-5)
        assert g_new.keys() == g_old.keys()
        for name in g_new:
            torch.testing.assert_close(g_new[name], g_old[name], atol=1e-5, rtol=1e-4, msg=name)


def _random_gpt(vocab: int, n_layer: int) -> GPT:
    """A small GPT with large random weights (seed 0), so every op's effect shows."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, seq_len=16, n_layer=n_layer, n_embd=64, n_head=2))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def test_gpt_cached_generation_matches_full_forward():
    """The fused ops under no_grad with a KV cache give the full forward's last logits."""
    model = _random_gpt(50, n_layer=2)
    with torch.no_grad():
        idx = torch.randint(0, 50, (2, 10))
        full = model(idx)
        cache = model.new_cache(2, 16)
        model(idx[:, :6], cache=cache)
        steps = [model(idx[:, t:t + 1], cache=cache)[:, -1] for t in range(6, 10)]
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 6:], atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compiled_gpt_matches_eager():
    """torch.compile (the CUDA default) traces the hand-written backwards to the eager result."""
    model = _random_gpt(61, n_layer=1)
    idx, targets = torch.randint(0, 61, (2, 16)), torch.randint(0, 61, (2, 16))
    results = []
    for f in (model, torch.compile(model)):
        model.zero_grad(set_to_none=True)
        loss = f(idx, targets)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-5, rtol=1e-5)
    for a, b in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
