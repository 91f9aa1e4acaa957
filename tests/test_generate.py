"""Sampling: cache equivalence for every family, temperature / top-k / top-p, seeds, stops."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from musicml.generate import generate, sample_next
from musicml.models import MODEL_FAMILIES, build_model, model_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

V = 29
SMALL = {"gpt": {"n_layer": 2, "n_embd": 32, "n_head": 2}, "bigram": {},
         "lstm": {"embed_dim": 16, "hidden_dim": 32}}


def random_model(family: str, seq_len: int = 24):
    torch.manual_seed(0)
    model = build_model(family, model_config(family, V, seq_len, **SMALL[family]))
    with torch.no_grad():  # zero-initialized read-outs would make every token a tie
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model


@pytest.mark.parametrize("family", sorted(MODEL_FAMILIES))
def test_greedy_cache_equals_no_cache(family):
    model = random_model(family)
    prompt = [0, 5, 7, 3]
    # 60 new tokens run well past the GPT's 24-token context: the window shifts
    a = generate(model, prompt, max_new_tokens=60, temperature=0, use_cache=True)
    b = generate(model, prompt, max_new_tokens=60, temperature=0, use_cache=False)
    assert a == b and len(a) == 60


def test_sampled_cache_equals_no_cache_with_seed():
    model = random_model("gpt")
    kw = dict(max_new_tokens=40, temperature=1.0, top_k=10, seed=7)
    assert generate(model, [0, 1], use_cache=True, **kw) == generate(model, [0, 1],
                                                                    use_cache=False, **kw)


def test_seed_reproducible_and_varies():
    model = random_model("gpt")
    a = generate(model, [0], max_new_tokens=30, seed=1)
    assert a == generate(model, [0], max_new_tokens=30, seed=1)
    assert a != generate(model, [0], max_new_tokens=30, seed=2)


def test_long_prompt_is_cropped_to_context():
    model = random_model("gpt", seq_len=16)
    prompt = list(range(1, 29)) * 2  # 56 tokens > context 16
    a = generate(model, prompt, max_new_tokens=10, temperature=0)
    assert a == generate(model, prompt[-16:], max_new_tokens=10, temperature=0)


def test_stop_ids():
    model = random_model("bigram")
    free = generate(model, [0], max_new_tokens=30, temperature=0)
    stop = free[4]
    first = free.index(stop)
    out = generate(model, [0], max_new_tokens=30, temperature=0, stop_ids=[stop])
    assert out == free[:first + 1]


def test_empty_prompt_rejected():
    with pytest.raises(ValueError):
        generate(random_model("bigram"), [], max_new_tokens=3)


def draw(logits, n=2000, **kw):
    g = torch.Generator().manual_seed(0)
    return Counter(sample_next(logits, generator=g, **kw) for _ in range(n))


LOGITS = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0])


def test_temperature_zero_is_greedy():
    assert set(draw(LOGITS, n=50, temperature=0)) == {0}


def test_top_k_restricts_support():
    assert set(draw(LOGITS, top_k=3)) == {0, 1, 2}
    assert set(draw(LOGITS, top_k=1)) == {0}


def test_top_p_keeps_the_nucleus():
    probs = torch.softmax(LOGITS, -1)
    assert probs[0] < 0.5 < probs[:2].sum()
    assert set(draw(LOGITS, top_p=0.5)) == {0, 1}  # smallest set reaching 50 %
    assert set(draw(LOGITS, top_p=1e-6)) == {0}
    assert len(draw(LOGITS, top_p=1.0)) >= 7


def test_temperature_shapes_the_distribution():
    cold, hot = draw(LOGITS, temperature=0.3), draw(LOGITS, temperature=3.0)
    assert cold[0] > hot[0]
    assert len(hot) > len(cold)
    # at temperature 1 the frequencies follow softmax(logits)
    plain = draw(LOGITS, n=4000)
    probs = torch.softmax(LOGITS, -1)
    for tok in range(4):
        assert abs(plain[tok] / 4000 - probs[tok].item()) < 0.03
