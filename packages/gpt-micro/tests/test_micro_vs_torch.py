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
from gpt_micro.model import MicroConfig, MicroGPT

TOL = 1e-6


def torch_name(micro_name: str) -> str:
    """The gpt_core state_dict key holding a micro parameter (q/k/v are rows of attn.qkv)."""
    if micro_name == "wte":
        return "tok_emb.weight"
    if micro_name == "wpe":
        return "pos_emb.weight"
    if micro_name in ("norm_f", "lm_head"):
        return f"{micro_name}.weight"
    layer, part = micro_name.split(".")
    i = layer[1:]
    return {
        "norm1": f"blocks.{i}.norm1.weight",
        "norm2": f"blocks.{i}.norm2.weight",
        "wq": f"blocks.{i}.attn.qkv.weight",
        "wk": f"blocks.{i}.attn.qkv.weight",
        "wv": f"blocks.{i}.attn.qkv.weight",
        "wo": f"blocks.{i}.attn.proj.weight",
        "fc": f"blocks.{i}.mlp.fc.weight",
        "proj": f"blocks.{i}.mlp.proj.weight",
    }[part]


def torch_slice(micro_name: str, tensor: torch.Tensor, d: int) -> torch.Tensor:
    """The part of a torch tensor matching a micro parameter, as a 2-D (rows, cols) tensor."""
    if tensor.dim() == 1:  # a norm gain: micro keeps it as a 1-row matrix
        return tensor[None, :]
    part = micro_name.split(".")[-1]
    if part in ("wq", "wk", "wv"):  # qkv.weight is (3d, d): q rows, then k rows, then v rows
        k = ("wq", "wk", "wv").index(part)
        return tensor[k * d : (k + 1) * d]
    return tensor


def build_pair(tie: bool, attention: Attention, seed: int) -> tuple[MicroGPT, GPT]:
    """A torch GPT with random weights, and a MicroGPT holding exactly the same numbers."""
    cfg = GPTConfig(
        vocab_size=7,
        max_seq_len=6,
        d_model=8,
        n_layers=2,
        n_heads=2,
        dropout=0.0,
        pos_encoding="learned",
        norm="rmsnorm",
        mlp="relu",
        bias=False,
        tie_weights=tie,
        attention=attention,
    )
    torch.manual_seed(seed)
    ref = GPT(cfg).double()
    with torch.no_grad():  # bigger-than-init weights and non-unit gains: a sharper test
        for p in ref.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    micro = MicroGPT(
        MicroConfig(
            vocab_size=7,
            block_size=cfg.max_seq_len,
            n_embd=cfg.d_model,
            n_layer=cfg.n_layers,
            n_head=cfg.n_heads,
            tie_weights=tie,
            norm_eps=cfg.norm_eps,
        )
    )
    state = ref.state_dict()
    for name, matrix in micro.params.items():
        values = torch_slice(name, state[torch_name(name)], cfg.d_model).tolist()
        assert (len(values), len(values[0])) == (len(matrix), len(matrix[0])), name
        for row, vrow in zip(matrix, values, strict=True):
            for v, x in zip(row, vrow, strict=True):
                v.data = x
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
        grad = ref_params[torch_name(name)].grad
        assert grad is not None, name
        diff = max_abs_diff(matrix, torch_slice(name, grad, ref.config.d_model), use_grad=True)
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
