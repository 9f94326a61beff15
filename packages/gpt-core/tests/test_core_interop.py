"""Loading GPT-2 checkpoints, checked against the real transformers implementation.

Export (save_gpt2) of every model variant is tested in test_core_variants.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_core import GPT, ConfigError
from gpt_core.interop import load_gpt2

transformers = pytest.importorskip("transformers")


def hf_model(**kw: Any) -> Any:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=97,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=None,
        eos_token_id=None,
        attn_implementation="eager",
        **kw,
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # larger than the 0.02 init, so a wrong mapping cannot hide
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def assert_same_logits(ours: GPT, hf: Any, batch: int, length: int) -> None:
    idx = torch.randint(0, 97, (batch, length))
    with torch.no_grad():
        logits, _ = ours.eval()(idx)
        torch.testing.assert_close(logits, hf(idx).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_load_hf_gpt2_gives_the_same_logits(tmp_path: Path, fmt: str) -> None:
    hf = hf_model()
    if fmt == "safetensors":
        hf.save_pretrained(tmp_path)
    else:  # an old-style checkpoint: pickled state dict, keys without "transformer."
        hf.config.save_pretrained(tmp_path)
        state = {k.removeprefix("transformer."): v for k, v in hf.state_dict().items()}
        torch.save(state, tmp_path / "pytorch_model.bin")
    ours = load_gpt2(tmp_path)
    assert ours.config.vocab_size == 97
    assert ours.config.n_layers == 2
    assert_same_logits(ours, hf, 2, 32)
    assert ours.lm_head.weight is ours.tok_emb.weight


def test_load_with_overrides_and_padding(tmp_path: Path) -> None:
    hf = hf_model(n_inner=48)
    hf.save_pretrained(tmp_path)
    ours = load_gpt2(tmp_path, attention="manual", pad_vocab_multiple=64)
    assert ours.config.padded_vocab_size == 128
    assert ours.config.hidden_size == 48
    assert_same_logits(ours, hf, 1, 20)


def test_untied_checkpoints_keep_their_own_head(tmp_path: Path) -> None:
    hf = hf_model(tie_word_embeddings=False)
    hf.save_pretrained(tmp_path)
    ours = load_gpt2(tmp_path)
    assert ours.lm_head.weight is not ours.tok_emb.weight
    assert_same_logits(ours, hf, 2, 16)


def test_clear_errors_for_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        load_gpt2(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ConfigError, match="model_type is 'llama'"):
        load_gpt2(tmp_path)
    cfg = dict(model_type="gpt2", vocab_size=10, n_positions=8, n_embd=8, n_layer=1, n_head=2)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors or pytorch_model\.bin"):
        load_gpt2(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "activation_function": "gelu"}))
    with pytest.raises(ConfigError, match="activation_function 'gelu' is not supported"):
        load_gpt2(tmp_path)


def test_export_of_a_bf16_untied_model_is_float32_throughout(tmp_path: Path) -> None:
    from gpt_core import GPTConfig
    from gpt_core.interop import save_gpt2
    from safetensors import safe_open

    cfg = GPTConfig(vocab_size=97, max_seq_len=16, d_model=32, n_layers=1, n_heads=4)
    model = GPT(dataclasses.replace(cfg, tie_weights=False)).to(torch.bfloat16)
    save_gpt2(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "float32"
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118
        assert "lm_head.weight" in set(f.keys())
    assert dtypes == {torch.float32}
