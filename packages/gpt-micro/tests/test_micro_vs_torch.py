"""The proof: the pure-Python GPT and gpt_core.GPT compute the same loss and the same gradients.

Both get identical weights (random, including the RMSNorm gains) and the same batch; the torch
model runs in float64 (as Python floats are), so loss, logits and every gradient must agree to
1e-6 (in practice they agree to ~1e-15).
"""

from __future__ import annotations

import random

import pytest
import torch
from gpt_core import GPT, GPTConfig
from gpt_core.config import Attention
from gpt_micro.engine import Value
from gpt_micro.interop import (
    gpt_core_key,
    gpt_core_part,
    gpt_core_settings,
    load_gpt_core_weights,
)
from gpt_micro.model import MicroConfig, MicroGPT

TOL = 1e-6


def build_pair(tie: bool, attention: Attention, seed: int) -> tuple[MicroGPT, GPT]:
    """A torch GPT with random weights, and a MicroGPT holding exactly the same numbers."""
    micro = MicroGPT(
        MicroConfig(vocab_size=7, block_size=6, n_embd=8, n_layer=2, n_head=2, tie_weights=tie)
    )
    cfg = GPTConfig(**gpt_core_settings(micro.config), attention=attention)
    torch.manual_seed(seed)
    ref = GPT(cfg).double()
    with torch.no_grad():  # bigger-than-init weights and non-unit gains: a sharper test
        for p in ref.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    load_gpt_core_weights(micro, {k: t.tolist() for k, t in ref.state_dict().items()})
    for name, matrix in micro.params.items():  # the copy really is exact
        part = gpt_core_part(name, ref.state_dict()[gpt_core_key(name)].tolist(), cfg.d_model)
        assert [[v.data for v in row] for row in matrix] == part, name
    return micro, ref


def max_abs_diff(matrix: list[list[Value]], tensor: torch.Tensor, use_grad: bool) -> float:
    got = torch.tensor(
        [[v.grad if use_grad else v.data for v in row] for row in matrix], dtype=torch.float64
    )
    return float((got - tensor).abs().max())


@pytest.mark.parametrize(
    ("tie", "attention"), [(False, "manual"), (True, "manual"), (False, "sdpa"), (True, "sdpa")]
)
def test_loss_and_every_gradient_match_gpt_core(tie: bool, attention: Attention) -> None:
    micro, ref = build_pair(tie, attention, seed=3)
    rng = random.Random(1)
    B, T = 3, 6
    inputs = [[rng.randrange(7) for _ in range(T)] for _ in range(B)]
    targets = [[rng.randrange(7) for _ in range(T)] for _ in range(B)]
    targets[1][2] = -1  # ignored positions count in neither loss
    targets[2][5] = -1

    loss = micro.loss(inputs, targets)
    loss.backward()
    logits, ref_loss = ref(torch.tensor(inputs), torch.tensor(targets))
    assert ref_loss is not None
    ref_loss.backward()

    assert abs(loss.data - ref_loss.item()) < TOL
    for b, seq in enumerate(inputs):  # every logit of every position, too
        assert max_abs_diff(micro.forward(seq), logits[b].detach(), use_grad=False) < TOL

    ref_params = dict(ref.named_parameters())  # a tied head appears once, as tok_emb
    checked = 0
    for name, matrix in micro.params.items():
        grad = ref_params[gpt_core_key(name)].grad
        assert grad is not None, name
        part = torch.tensor(gpt_core_part(name, grad.tolist(), ref.config.d_model))
        diff = max_abs_diff(matrix, part, use_grad=True)
        assert diff < TOL, f"{name}: gradient differs by {diff:.3g}"
        checked += sum(len(row) for row in matrix)
    assert checked == ref.num_parameters() == micro.num_parameters()


def test_a_wrong_weight_is_caught() -> None:
    """The comparison is sharp: nudging one weight by 1e-3 moves the loss past the tolerance."""
    micro, ref = build_pair(tie=False, attention="manual", seed=5)
    inputs, targets = [[1, 2, 3, 4]], [[2, 3, 4, 5]]
    micro.params["h1.fc"][3][2].data += 1e-3
    _, ref_loss = ref(torch.tensor(inputs), torch.tensor(targets))
    assert ref_loss is not None
    assert abs(micro.loss(inputs, targets).data - ref_loss.item()) > TOL
