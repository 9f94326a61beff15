"""gpt_train.explain: a look inside one training step, for every attention and position kind."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from gpt_core import GPT, GPTConfig
from gpt_train.config import OptimSection
from gpt_train.explain import explain_due, explain_step
from gpt_train.optim import StepEngine, build_optimizer
from gpt_train.precision import make_precision

B, T, V = 3, 12, 17


def setup(**model: Any) -> tuple[GPT, torch.optim.Optimizer, StepEngine]:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=V, max_seq_len=16, d_model=24, n_layers=2, n_heads=3, **model)
    net = GPT(config)
    optimizer = build_optimizer(net, OptimSection(lr=1e-2), "cpu")
    return net, optimizer, StepEngine(net, optimizer, make_precision("fp32", "cpu"), 1.0)


def batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (2, B, T + 1), generator=g)
    return [(ids[i, :, :-1], ids[i, :, 1:]) for i in range(2)]  # two micro-batches


def explained(**model: Any) -> tuple[str, GPT, torch.optim.Optimizer]:
    net, optimizer, engine = setup(**model)
    out: list[str] = []
    with explain_step(net, optimizer, 1, out.append):
        engine.forward_backward(batches())
        engine.update()
    assert len(out) == 1
    return out[0], net, optimizer


@pytest.mark.parametrize(
    "variant",
    [
        {"attention": "sdpa", "pos_encoding": "learned"},
        {"attention": "manual", "pos_encoding": "learned"},
        {"attention": "sdpa", "pos_encoding": "rope", "mlp": "swiglu", "norm": "rmsnorm"},
        {"attention": "manual", "pos_encoding": "rope"},
    ],
)
def test_the_explanation_shows_every_layer_with_real_shapes(variant: dict[str, Any]) -> None:
    text, net, _ = explained(**variant)
    lines = text.splitlines()
    heads, hd = 3, 8
    assert f"idx ({B}, {T}) = (B, T)" in text
    assert f"token embedding: ({B}, {T}) -> ({B}, {T}, 24)" in text
    for i in range(2):  # every block, in order
        assert f"  block {i}: in ({B}, {T}, 24)" in lines
    qkv = f"({B}, {heads}, {T}, {hd})"
    assert text.count(f"Q {qkv}  K {qkv}  V {qkv}  = (B, heads, T, head_dim)") == 2
    assert f"scale = 1/sqrt({hd}) = {1 / math.sqrt(hd):.4f}" in text
    assert ("RoPE" in text) == (variant["pos_encoding"] == "rope")
    start = lines.index("      causal mask, first 5x5 (1 = may attend; query rows, key columns):")
    assert [ln.split() for ln in lines[start + 1 : start + 6]] == [
        ["1" if j <= i else "0" for j in range(5)] for i in range(5)
    ]
    assert text.count("every row of weights sums to 1: yes") == 2
    weights = lines[start + 7].split()  # batch 0 head 0, query 0 sees only key 0
    assert weights == ["1.000", "0.000", "0.000", "0.000", "0.000"]
    hidden = net.config.hidden_size
    assert f"-> proj ({B}, {T}, 24), added to x" in text
    assert f"({B}, {T}, {hidden})" in text
    assert f"logits ({B}, {T}, {V}) = (B, T, vocab)" in text
    assert f"ln({V}) = {math.log(V):.4f}" in text
    for name, p in net.named_parameters():  # one row per parameter, every group
        row = next(ln for ln in lines if ln.split()[:1] == [name])
        assert "x".join(map(str, p.shape)) in row
    assert "group 'decay'" in text
    assert "group 'no decay'" in text
    assert "learning rate 1.000e-02" in text
    assert "weights updated." in text


def test_only_the_first_forward_is_described_and_the_loss_is_that_batch() -> None:
    text, net, _ = explained()
    assert text.count("=== explain step 1") == 1
    assert text.count("  block 0: in") == 1  # two micro-batches ran, one is shown
    x, y = batches()[0]
    torch.manual_seed(0)
    fresh = GPT(net.config)
    _, loss = fresh(x, y)
    assert loss is not None
    assert f"loss {float(loss.detach()):.4f} (cross-entropy)" in text


def test_explaining_changes_nothing_and_leaves_no_hooks() -> None:
    _, net, optimizer = explained()
    plain, _, engine = setup()
    engine.forward_backward(batches())
    engine.update()
    for (name, a), b in zip(net.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # bit for bit the same step
    for module in net.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
    assert not optimizer._optimizer_step_pre_hooks
    assert not optimizer._optimizer_step_post_hooks


def test_which_steps_are_explained() -> None:
    due = [s for s in range(1, 13) if explain_due(s, first=2, interval=5)]
    assert due == [1, 2, 5, 10]
    assert [s for s in range(1, 13) if explain_due(s, first=1, interval=0)] == [1]
    assert not any(explain_due(s, first=0, interval=0) for s in range(1, 13))


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_steps_are_explained_with_unscaled_gradients(precision: str) -> None:
    net, optimizer, _ = setup()
    engine = StepEngine(net, optimizer, make_precision(precision, "cpu"), 1.0)
    out: list[str] = []
    with explain_step(net, optimizer, 1, out.append):
        engine.forward_backward(batches())
        engine.update()
    text = out[0]
    assert text.count("every row of weights sums to 1: yes") == 2  # checked in float32
    if "skipped" not in text:  # fp16 may overflow on its first scale and skip the step
        row = next(ln for ln in text.splitlines() if ln.split()[:1] == ["tok_emb.weight"])
        assert 1e-6 < float(row.split()[-2]) < 10  # the grad norm, unscaled (scale is 65536)


def test_without_the_forward_part_only_the_update_is_shown() -> None:
    net, optimizer, engine = setup()
    out: list[str] = []
    with explain_step(net, optimizer, 1, out.append, forward=False):
        engine.forward_backward(batches())
        engine.update()
    assert "Q (" not in out[0]
    assert "not shown with train.compile" in out[0]
    assert "weights updated." in out[0]
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
