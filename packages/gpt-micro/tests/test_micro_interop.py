"""The gpt_core <-> MicroGPT weight map: keys, q/k/v slices, and clear errors on a bad state."""

from __future__ import annotations

import pytest
from gpt_micro import MicroConfig, MicroError, MicroGPT
from gpt_micro.interop import (
    gpt_core_key,
    gpt_core_part,
    gpt_core_settings,
    load_gpt_core_weights,
)


def test_keys_and_parts() -> None:
    assert gpt_core_key("wte") == "tok_emb.weight"
    assert gpt_core_key("h1.wk") == "blocks.1.attn.qkv.weight"
    assert gpt_core_key("h0.norm2") == "blocks.0.norm2.weight"
    qkv = [[float(10 * r + c) for c in range(2)] for r in range(6)]  # (3d, d) with d = 2
    assert gpt_core_part("h0.wk", qkv, d_model=2) == qkv[2:4]
    assert gpt_core_part("h0.norm1", [1.0, 2.0], d_model=2) == [[1.0, 2.0]]
    with pytest.raises(MicroError, match=r"'h0\.wz' is not a MicroGPT parameter"):
        gpt_core_key("h0.wz")


def _state(model: MicroGPT, value: float) -> dict[str, list[list[float]] | list[float]]:
    """A gpt_core-shaped state dict (nested lists) filled with one number."""
    c = model.config
    d = c.n_embd
    state: dict[str, list[list[float]] | list[float]] = {}
    for name, matrix in model.params.items():
        key = gpt_core_key(name)
        rows, cols = len(matrix), len(matrix[0])
        if name.endswith(("norm1", "norm2", "norm_f")):
            state[key] = [value] * cols
        elif name.endswith((".wq", ".wk", ".wv")):
            state[key] = [[value] * d for _ in range(3 * d)]
        else:
            state[key] = [[value] * cols for _ in range(rows)]
    return state


def test_load_copies_every_weight_and_names_what_is_missing() -> None:
    model = MicroGPT(MicroConfig(vocab_size=5, block_size=4, n_embd=4, n_head=2))
    state = _state(model, 0.25)
    load_gpt_core_weights(model, state)
    assert {v.data for v in model.parameters()} == {0.25}
    del state["blocks.0.mlp.fc.weight"]
    with pytest.raises(
        MicroError, match=r"no 'blocks\.0\.mlp\.fc\.weight' \(needed for 'h0\.fc'\)"
    ):
        load_gpt_core_weights(model, state)
    state = _state(model, 0.5)
    state["tok_emb.weight"] = [[0.5] * 4]  # one row where the vocabulary needs five
    with pytest.raises(
        MicroError, match=r"'tok_emb\.weight' gives 'wte' shape \(1, 4\), expected \(5, 4\)"
    ):
        load_gpt_core_weights(model, state)


def test_settings_describe_the_micro_architecture() -> None:
    config = MicroConfig(vocab_size=9, block_size=8, n_embd=12, n_layer=3, n_head=3)
    settings = gpt_core_settings(config)
    assert (settings["max_seq_len"], settings["d_model"], settings["mlp_hidden"]) == (8, 12, 48)
    assert (settings["norm"], settings["mlp"], settings["bias"]) == ("rmsnorm", "relu", False)
    with pytest.raises(MicroError, match="norm_weight=False has no gpt_core equivalent"):
        gpt_core_settings(MicroConfig(vocab_size=9, norm_weight=False))
