"""How a MicroGPT maps onto `gpt_core.GPT`: its GPTConfig, and where each weight lives.

gpt_core stacks q, k and v in one (3d, d) matrix `attn.qkv` and keeps norm gains as vectors;
MicroGPT has separate (d, d) matrices and 1-row gains. These functions translate, so weights
or gradients handed over as nested lists (`tensor.tolist()`) can be copied in or compared
without gpt_micro importing torch. The torch comparison test and the gpt-micro notebook
both use them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from gpt_micro.model import MicroConfig, MicroGPT
from gpt_micro.train import MicroError

_QKV = ("wq", "wk", "wv")  # their order inside attn.qkv's rows

_BLOCK_KEYS = {
    "norm1": "norm1.weight",
    "norm2": "norm2.weight",
    "wq": "attn.qkv.weight",
    "wk": "attn.qkv.weight",
    "wv": "attn.qkv.weight",
    "wo": "attn.proj.weight",
    "fc": "mlp.fc.weight",
    "proj": "mlp.proj.weight",
}


class GPTCoreSettings(TypedDict):
    """The `gpt_core.GPTConfig` arguments for the architecture a MicroConfig describes."""

    vocab_size: int
    max_seq_len: int
    d_model: int
    n_layers: int
    n_heads: int
    mlp_hidden: int
    dropout: float
    pos_encoding: Literal["learned"]
    norm: Literal["rmsnorm"]
    norm_eps: float
    mlp: Literal["relu"]
    bias: bool
    tie_weights: bool


def gpt_core_settings(config: MicroConfig) -> GPTCoreSettings:
    """What to pass to GPTConfig for the same model: `GPTConfig(**gpt_core_settings(c))`.

    MicroGPT is fixed to learned positions, RMSNorm, a ReLU MLP, no biases and no dropout."""
    if not config.norm_weight:
        raise MicroError("norm_weight=False has no gpt_core equivalent (its RMSNorm has a gain)")
    return GPTCoreSettings(
        vocab_size=config.vocab_size,
        max_seq_len=config.block_size,
        d_model=config.n_embd,
        n_layers=config.n_layer,
        n_heads=config.n_head,
        mlp_hidden=config.hidden,
        dropout=0.0,
        pos_encoding="learned",
        norm="rmsnorm",
        norm_eps=config.norm_eps,
        mlp="relu",
        bias=False,
        tie_weights=config.tie_weights,
    )


def gpt_core_key(name: str) -> str:
    """The gpt_core state-dict key that holds MicroGPT parameter `name` ("h0.wq" -> the qkv)."""
    top = {"wte": "tok_emb", "wpe": "pos_emb", "norm_f": "norm_f", "lm_head": "lm_head"}
    if name in top:
        return f"{top[name]}.weight"
    layer, _, part = name.partition(".")
    if not layer.startswith("h") or not layer[1:].isdigit() or part not in _BLOCK_KEYS:
        raise MicroError(f"{name!r} is not a MicroGPT parameter name")
    return f"blocks.{layer[1:]}.{_BLOCK_KEYS[part]}"


def gpt_core_part(name: str, values: Sequence[Any], d_model: int) -> list[list[float]]:
    """The rows of a gpt_core tensor (as nested lists) that make MicroGPT parameter `name`:
    a third of qkv for q/k/v, a 1-row matrix for a norm gain, otherwise the whole matrix."""
    if values and not isinstance(values[0], Sequence):  # a 1-D gain vector
        return [[float(v) for v in values]]
    part = name.rpartition(".")[2]
    rows = list(values)
    if part in _QKV:
        k = _QKV.index(part)
        rows = rows[k * d_model : (k + 1) * d_model]
    return [[float(v) for v in row] for row in rows]


def load_gpt_core_weights(model: MicroGPT, state: Mapping[str, Sequence[Any]]) -> None:
    """Overwrite every MicroGPT weight with the matching numbers of a gpt_core state dict
    whose tensors were turned into nested lists (`{k: t.tolist() for k, t in sd.items()}`)."""
    for name, matrix in model.params.items():
        key = gpt_core_key(name)
        if key not in state:
            raise MicroError(f"the gpt_core state has no {key!r} (needed for {name!r})")
        rows = gpt_core_part(name, state[key], model.config.n_embd)
        got = (len(rows), len(rows[0]) if rows else 0)
        want = (len(matrix), len(matrix[0]))
        if got != want:
            raise MicroError(f"{key!r} gives {name!r} shape {got}, expected {want}")
        for row, numbers in zip(matrix, rows, strict=True):
            for v, x in zip(row, numbers, strict=True):
                v.data = x
