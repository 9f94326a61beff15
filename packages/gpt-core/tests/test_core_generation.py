"""Generation and sampling: greedy, seeds, top-k/top-p, stop ids, padding, prompt cropping."""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any, cast

import pytest
import torch
from gpt_core import GPT, ConfigError, GPTConfig, SamplingConfig, generate, stream
from gpt_core.decode import direct_attributes
from gpt_core.generation import GenerationStep
from gpt_core.sampling import filter_logits, sample_next


def model_for(**kw: Any) -> GPT:
    torch.manual_seed(0)
    base: dict[str, Any] = dict(vocab_size=50, max_seq_len=16, d_model=32, n_layers=2, n_heads=4)
    model = GPT(GPTConfig(**{**base, **kw})).eval()
    with torch.no_grad():  # sharper, less uniform predictions than the 0.02 init
        model.tok_emb.weight.mul_(20)
    return model


def gen(model: GPT, idx: torch.Tensor, n: int, use_cache: bool = True, **kw: Any) -> torch.Tensor:
    return generate(model, idx, SamplingConfig(max_new_tokens=n, **kw), use_cache=use_cache)


@pytest.mark.parametrize("pos_encoding", ["learned", "rope"])
def test_greedy_is_deterministic_and_matches_step_by_step_argmax(pos_encoding: str) -> None:
    model = model_for(pos_encoding=pos_encoding)
    prompt = torch.randint(0, 50, (2, 5))
    out = gen(model, prompt, 8, temperature=0)
    assert out.shape == (2, 13)
    assert torch.equal(out[:, :5], prompt)
    assert torch.equal(out, gen(model, prompt, 8, temperature=0, use_cache=False))
    seq = prompt
    with torch.no_grad():
        for _ in range(8):
            seq = torch.cat([seq, model(seq)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq)


def test_seed_reproduces_samples_without_touching_the_global_rng() -> None:
    model = model_for()
    prompt = torch.randint(0, 50, (3, 4))
    state = torch.get_rng_state()
    a = gen(model, prompt, 12, temperature=1.0, seed=123)
    b = gen(model, prompt, 12, temperature=1.0, seed=123, use_cache=False)
    c = gen(model, prompt, 12, temperature=1.0, seed=124)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_top_k_restricts_support_to_the_k_largest() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.5, -1.0, 2.0]])
    g = torch.Generator().manual_seed(0)
    seen = {int(sample_next(logits, 1.0, top_k=3, generator=g)[0]) for _ in range(300)}
    assert seen == {1, 3, 5}
    assert int(sample_next(logits, 5.0, top_k=1, generator=g)[0]) == 1


def test_top_p_keeps_the_smallest_nucleus() -> None:
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    logits = probs.log()

    def keep(p: float) -> set[int]:
        finite = torch.isfinite(filter_logits(logits, None, p))[0]
        return set(finite.nonzero().view(-1).tolist())

    assert keep(0.4) == {1}
    assert keep(0.7) == {1, 3}
    assert keep(0.8) == {1, 3}  # 0.5 + 0.3 already reaches 0.8
    assert keep(0.85) == {1, 3, 2}
    assert keep(1.0) == {0, 1, 2, 3}
    g = torch.Generator().manual_seed(0)
    seen = {int(sample_next(logits, 1.0, top_p=0.7, generator=g)[0]) for _ in range(200)}
    assert seen == {1, 3}


def test_stream_yields_tokens_and_the_distribution_they_came_from() -> None:
    model = model_for(pad_vocab_multiple=64)
    prompt = torch.randint(0, 50, (2, 3))
    sampling = SamplingConfig(max_new_tokens=5, temperature=0.7, top_k=10, seed=1)
    steps = list(stream(model, prompt, sampling, return_probs=True))
    assert [s.index for s in steps] == [0, 1, 2, 3, 4]
    tokens = torch.stack([s.tokens for s in steps], dim=1)
    assert torch.equal(tokens, generate(model, prompt, sampling)[:, 3:])
    for s in steps:
        assert s.tokens.shape == (2,)
        assert s.probs is not None
        assert s.probs.shape == (2, 50)
        torch.testing.assert_close(s.probs.sum(-1), torch.ones(2))
        assert (s.probs.gather(1, s.tokens[:, None]) > 0).all()
        assert ((s.probs > 0).sum(-1) <= 10).all()
    first = next(iter(stream(model, prompt, SamplingConfig(max_new_tokens=2, temperature=0))))
    assert first.tokens.shape == (2,)
    assert first.probs is None


def test_stop_ids_end_rows_and_generation() -> None:
    model = model_for()
    prompt = torch.randint(0, 50, (2, 4))
    free = gen(model, prompt, 6, temperature=0)
    stop = int(free[0, 4])  # row 0's first new token
    single = gen(model, prompt[:1], 6, temperature=0, stop_ids=[stop, 999])
    assert torch.equal(single, free[:1, :5])  # the stop token is kept, then generation ends
    out = gen(model, prompt, 6, temperature=0, stop_ids=[stop])
    assert (out[0, 4:] == stop).all()  # a finished row repeats its stop token
    hits = (free[1, 4:] == stop).nonzero().view(-1)
    if len(hits) == 0:  # row 1 never stops, so it runs the full length unchanged
        assert torch.equal(out[1], free[1])
    else:  # both rows stopped: generation ended at row 1's stop
        assert out.shape[1] == 5 + int(hits[0])


def test_padded_ids_are_never_sampled() -> None:
    model = model_for(vocab_size=40, pad_vocab_multiple=64)
    with torch.no_grad():
        model.tok_emb.weight[40:] = 50.0  # the padded rows would win every argmax if visible
    prompt = torch.randint(0, 40, (4, 3))
    sampled = gen(model, prompt, 10, temperature=2.0, seed=0)
    greedy = gen(model, prompt, 10, temperature=0)
    assert sampled.max() < 40
    assert greedy.max() < 40


def test_long_prompts_are_cropped_to_the_most_recent_tokens() -> None:
    model = model_for(max_seq_len=8, pos_encoding="learned")
    prompt = torch.randint(0, 50, (1, 20))
    out = gen(model, prompt, 4, temperature=0)
    assert out.shape == (1, 24)
    assert torch.equal(out[:, :20], prompt)  # the whole prompt is returned...
    cropped = gen(model, prompt[:, -8:], 4, temperature=0)
    assert torch.equal(out[:, 20:], cropped[:, 8:])  # ...but only its last 8 tokens were seen


@pytest.mark.parametrize("pos_encoding", ["learned", "rope"])
def test_generating_past_the_window_with_cache_matches_recompute(pos_encoding: str) -> None:
    model = model_for(max_seq_len=8, pos_encoding=pos_encoding)
    prompt = torch.randint(0, 50, (2, 5))
    cached = gen(model, prompt, 12, temperature=0.9, seed=3)
    assert cached.shape == (2, 17)
    assert torch.equal(cached, gen(model, prompt, 12, temperature=0.9, seed=3, use_cache=False))


def test_generation_restores_training_mode() -> None:
    model = model_for(dropout=0.1).train()
    gen(model, torch.zeros(1, 2, dtype=torch.long), 2)
    assert model.training


def test_generation_leaves_the_model_as_it_found_it() -> None:
    """Decoding reads members as plain attributes while it runs (direct_attributes); the
    model's own attributes, parameters and behaviour are unchanged afterwards, also when a
    stream is abandoned part-way or a parameter is replaced meanwhile."""
    model = model_for()
    before = {id(m): dict(vars(m)) for m in model.modules()}
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    prompt = torch.zeros(1, 2, dtype=torch.long)
    first = gen(model, prompt, 6)
    steps = cast(
        Generator[GenerationStep, None, None],
        stream(model, prompt, SamplingConfig(max_new_tokens=6, temperature=0)),
    )
    next(steps)
    steps.close()  # abandoned part-way
    assert {id(m): dict(vars(m)) for m in model.modules()} == before
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert "qkv" not in vars(model.blocks[0].attn)  # registered, not a leftover copy
    assert torch.equal(gen(model, prompt, 6), first)


def test_members_replaced_while_attributes_are_direct_stay_replaced() -> None:
    model = model_for()
    head = torch.nn.Linear(32, 50, bias=False)
    with direct_attributes(model):
        model.lm_head = head
        model.norm_f.weight = torch.nn.Parameter(torch.full((32,), 2.0))
        assert model.lm_head is head
        assert float(model.norm_f.weight.detach()[0]) == 2.0
    assert dict(model.named_children())["lm_head"] is head
    assert float(model.norm_f.weight.detach()[0]) == 2.0
    assert float(model.state_dict()["norm_f.weight"][0]) == 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -1.0}, "temperature must be a finite number >= 0"),
        ({"temperature": float("nan")}, "temperature must be a finite number >= 0"),
        ({"top_k": 0}, "top_k must be >= 1"),
        ({"top_p": 1.5}, "top_p must be in"),
        ({"max_new_tokens": -2}, "max_new_tokens must be an integer >= 0"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be an integer >= 0"),
        ({"seed": "7"}, "seed must be an integer"),
        ({"stop_ids": [3, -1]}, "stop_ids must be token ids"),
        ({"stop_ids": 3}, "stop_ids must be a sequence"),
    ],
)
def test_bad_sampling_settings_are_clear_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SamplingConfig(**kwargs)


def test_sampling_config_is_frozen_and_keeps_stop_ids_as_a_tuple() -> None:
    sampling = SamplingConfig(max_new_tokens=3, stop_ids=[4, 5])  # type: ignore[arg-type]
    assert sampling.stop_ids == (4, 5)
    with pytest.raises(AttributeError):
        sampling.seed = 1  # type: ignore[misc]


def test_a_bad_prompt_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="non-empty LongTensor"):
        gen(model_for(), torch.zeros(3, dtype=torch.long), 3)


def test_zero_new_tokens_returns_the_prompt() -> None:
    prompt = torch.randint(0, 50, (2, 3))
    assert torch.equal(gen(model_for(), prompt, 0), prompt)


@pytest.mark.parametrize(
    "bad", [{"temperature": math.nan}, {"temperature": math.inf}, {"top_p": math.nan}]
)
def test_non_finite_sampling_values_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        SamplingConfig(**bad)  # type: ignore[arg-type]
