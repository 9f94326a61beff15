"""Every combination of model variants, end to end: it trains, it decodes with the KV cache
exactly as it recomputes, and it exports to the GPT-2 format (or refuses in one line).

The kinds come from the modules' own tables, so a variant added to norm.py, mlp.py or
attention.py is tested here with no change to this file.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_core import GPT, ConfigError, GPTConfig, SamplingConfig, generate
from gpt_core.attention import ATTENTIONS
from gpt_core.decode import DecodeStep
from gpt_core.interop import load_gpt2, save_gpt2
from gpt_core.mlp import MLPS
from gpt_core.norm import NORMS

transformers = pytest.importorskip("transformers")

NAMES = ("pos_encoding", "norm", "mlp", "attention", "bias", "tie_weights", "qk_norm")
POSITIONS = ("learned", "rope")
COMBOS = [
    dict(zip(NAMES, values, strict=True))
    for values in [
        *itertools.product(
            POSITIONS, NORMS, MLPS, ATTENTIONS, (True, False), (True, False), [False]
        ),
        # qk_norm with every position encoding, norm and attention kind (it touches only q, k)
        *itertools.product(POSITIONS, NORMS, ["gelu"], ATTENTIONS, [True], [True], [True]),
    ]
]
IDS = ["-".join(str(v) for v in combo.values()) for combo in COMBOS]
VOCAB, WINDOW = 13, 12


# Tiny models: on a busy machine torch's thread pool only waits on itself.
pytestmark = pytest.mark.usefixtures("one_thread")


def build(variant: dict[str, Any]) -> GPT:
    """A tiny model (padded vocab, two layers) with weights large enough that a wrong
    computation cannot hide inside the tolerance."""
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=VOCAB,
        max_seq_len=WINDOW,
        d_model=8,
        n_layers=2,
        n_heads=2,
        pad_vocab_multiple=8,
        **variant,
    )
    model = GPT(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    return model


def gpt2_mismatch(variant: dict[str, Any]) -> str | None:
    """The first option GPT-2 cannot express (learned positions, LayerNorm, a GELU or ReLU
    MLP, biases, no QK-norm), or None."""
    gpt2: dict[str, tuple[object, ...]] = {
        "pos_encoding": ("learned",),
        "norm": ("layernorm",),
        "mlp": ("gelu", "relu"),
        "bias": (True,),
        "qk_norm": (False,),
    }
    for name in ("pos_encoding", "norm", "mlp", "bias", "qk_norm"):
        if variant[name] not in gpt2[name]:
            return name
    return None


@pytest.mark.parametrize("variant", COMBOS, ids=IDS)
def test_training_step_reaches_every_parameter(variant: dict[str, Any]) -> None:
    model = build(variant).train()
    idx = torch.randint(0, VOCAB, (2, WINDOW))
    logits, loss = model(idx, torch.roll(idx, -1, dims=1))
    assert logits.shape == (2, WINDOW, VOCAB)
    assert loss is not None
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("variant", COMBOS, ids=IDS)
def test_cached_decoding_equals_full_recompute(variant: dict[str, Any]) -> None:
    model = build(variant).eval()
    idx = torch.randint(0, VOCAB, (2, WINDOW))
    step = DecodeStep(model, threads=2)  # a threaded form too: steps 0 and 1 try both
    with torch.inference_mode():
        full, _ = model(idx)
        lean, plain = model.new_cache(2), model.new_cache(2)
        model(idx[:, :4], cache=lean)
        model(idx[:, :4], cache=plain)
        by_step = [step(idx[:, t], lean) for t in range(4, WINDOW)]
        by_forward = [model(idx[:, t : t + 1], cache=plain)[0][:, -1] for t in range(4, WINDOW)]
    tol: dict[str, Any] = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack(by_step, dim=1), full[:, 4:], **tol)
    torch.testing.assert_close(torch.stack(by_forward, dim=1), full[:, 4:], **tol)

    prompt = idx[:, :3]  # 3 + 14 tokens: the window slides, so the cache is rebuilt too
    greedy = SamplingConfig(max_new_tokens=14, temperature=0)
    assert torch.equal(
        generate(model, prompt, greedy), generate(model, prompt, greedy, use_cache=False)
    )


@pytest.mark.parametrize("variant", COMBOS, ids=IDS)
def test_gpt2_export_or_a_one_line_refusal(variant: dict[str, Any], tmp_path: Path) -> None:
    model = build(variant).eval()
    mismatch = gpt2_mismatch(variant)
    if mismatch is not None:
        with pytest.raises(ConfigError, match=f"GPT-2 export needs {mismatch}=") as err:
            save_gpt2(model, tmp_path)
        assert "\n" not in str(err.value)
        return
    save_gpt2(model, tmp_path)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, attn_implementation="eager")
    idx = torch.randint(0, VOCAB, (2, WINDOW))
    with torch.no_grad():
        ours, _ = model(idx)
        theirs = hf.eval()(idx).logits
        again, _ = load_gpt2(tmp_path, attention=variant["attention"]).eval()(idx)
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again, ours, atol=1e-6, rtol=1e-6)
    assert hf.config.tie_word_embeddings is variant["tie_weights"]
