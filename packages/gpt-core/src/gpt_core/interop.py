"""Hugging Face GPT-2 checkpoints <-> GPT, from and to a local folder (no hub access).

A GPT-2 folder holds config.json and model.safetensors (or pytorch_model.bin, read with
torch.load(weights_only=True) so it cannot run code). GPT-2 stores its linear layers as
"Conv1D" with weights shaped (in, out), the transpose of nn.Linear's (out, in), so every
projection matrix is transposed on the way in and out. Our names mirror GPT-2's:
wte=tok_emb, wpe=pos_emb, h.i=blocks.i, ln_1/ln_2=norm1/norm2, c_attn=qkv, c_proj=proj,
c_fc=fc, ln_f=norm_f.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from gpt_core.config import ConfigError, GPTConfig
from gpt_core.model import GPT

# GPT-2 activation names that are exactly the tanh-approximated GELU we implement.
_ACTIVATIONS = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu": "relu"}
# Our MLP kinds that GPT-2's config can name (activation_function), and every option value
# the GPT-2 format can express: export refuses anything else, so a new variant is never
# written as something it is not.
_EXPORT_ACTIVATIONS = {"gelu": "gelu_new", "relu": "relu"}
_GPT2_OPTIONS: dict[str, tuple[object, ...]] = {
    "pos_encoding": ("learned",),
    "norm": ("layernorm",),
    "mlp": tuple(_EXPORT_ACTIVATIONS),
    "attention": ("sdpa", "manual"),  # the same maths, two implementations
    "bias": (True,),
    "qk_norm": (False,),
}
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_BLOCK_NAMES = {
    "ln_1": "norm1",
    "attn.c_attn": "attn.qkv",
    "attn.c_proj": "attn.proj",
    "ln_2": "norm2",
    "mlp.c_fc": "mlp.fc",
    "mlp.c_proj": "mlp.proj",
}


def _hf_to_ours(key: str) -> str:
    """'h.3.attn.c_attn.weight' -> 'blocks.3.attn.qkv.weight' (keys without 'transformer.')."""
    top = {"wte.weight": "tok_emb.weight", "wpe.weight": "pos_emb.weight"}
    if key in top:
        return top[key]
    if key.startswith("ln_f."):
        return "norm_f." + key[len("ln_f.") :]
    if key.startswith("h."):
        _, layer, rest = key.split(".", 2)
        for hf, ours in _BLOCK_NAMES.items():
            if rest.startswith(hf + "."):
                return f"blocks.{layer}.{ours}.{rest[len(hf) + 1 :]}"
    return key  # lm_head.weight, or an unknown key reported by the caller


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no config.json (expected a GPT-2 checkpoint folder)")
    try:
        cfg: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if cfg.get("model_type", "gpt2") != "gpt2":
        raise ConfigError(f"{path}: model_type is {cfg['model_type']!r}, expected 'gpt2'")
    return cfg


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of the checkpoint, safetensors preferred, sharded or not."""
    if (folder / "model.safetensors").is_file():
        return load_file(str(folder / "model.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for shard in shards:
            out.update(load_file(str(folder / shard)))
        return out
    if (folder / "pytorch_model.bin").is_file():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        return dict(state)
    raise FileNotFoundError(
        f"{folder}: no model.safetensors or pytorch_model.bin (expected GPT-2 weights)"
    )


def load_gpt2(path: str | os.PathLike[str], **overrides: Any) -> GPT:
    """A GPT with the weights of the GPT-2 checkpoint in folder `path`.

    overrides set GPTConfig fields that do not change the weights (attention="manual",
    dropout, pad_vocab_multiple, ...); dropout defaults to 0.
    """
    folder = Path(path)
    cfg = _read_config(folder)
    activation = cfg.get("activation_function", "gelu_new")
    if activation not in _ACTIVATIONS:
        raise ConfigError(
            f"{folder / 'config.json'}: activation_function {activation!r} is not supported "
            f"(expected one of {', '.join(_ACTIVATIONS)})"
        )
    for flag in ("scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"):
        if cfg.get(flag, False):
            raise ConfigError(f"{folder / 'config.json'}: {flag}=true is not supported")
    if not cfg.get("scale_attn_weights", True):
        raise ConfigError(f"{folder / 'config.json'}: scale_attn_weights=false is not supported")
    try:
        fields: dict[str, Any] = {
            "vocab_size": cfg["vocab_size"],
            "max_seq_len": cfg["n_positions"],
            "d_model": cfg["n_embd"],
            "n_layers": cfg["n_layer"],
            "n_heads": cfg["n_head"],
            "mlp_hidden": cfg.get("n_inner"),
            "norm_eps": cfg.get("layer_norm_epsilon", 1e-5),
            "tie_weights": cfg.get("tie_word_embeddings", True),
        }
    except KeyError as e:
        raise ConfigError(f"{folder / 'config.json'}: missing key {e}") from None
    fields.update(pos_encoding="learned", norm="layernorm", mlp=_ACTIVATIONS[activation])
    fields.update(bias=True, dropout=0.0)
    fields.update(overrides)
    model = GPT(GPTConfig(**fields))

    state: dict[str, torch.Tensor] = {}
    for key, tensor in _read_weights(folder).items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # old transformers stored the causal mask as a buffer
        if key == "lm_head.weight" and model.config.tie_weights:
            continue  # the same matrix as wte
        if key.endswith(_CONV1D):
            tensor = tensor.t()
        state[_hf_to_ours(key)] = tensor
    own = model.state_dict()
    if model.config.tie_weights:
        own.pop("lm_head.weight")
    missing = sorted(set(own) - set(state))
    unknown = sorted(set(state) - set(own))
    if missing or unknown:
        raise ConfigError(
            f"{folder}: weights do not match a GPT-2 of this config; "
            f"missing {missing[:5]}, unexpected {unknown[:5]}"
        )
    with torch.no_grad():
        for key, tensor in state.items():
            target = own[key]
            if key in ("tok_emb.weight", "lm_head.weight"):
                target = target[: tensor.shape[0]]  # padded rows keep their random init
            if target.shape != tensor.shape:
                raise ConfigError(
                    f"{folder}: {key} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(target.shape)} from config.json"
                )
            target.copy_(tensor)
    return model


def save_gpt2(model: GPT, path: str | os.PathLike[str]) -> Path:
    """Write `model` as a GPT-2 checkpoint folder (config.json + model.safetensors).

    Only the GPT-2 architecture can be written (_GPT2_OPTIONS); any other option value,
    including a variant added later, is refused with a ConfigError naming it. Returns the
    folder.
    """
    c = model.config
    for name, choices in _GPT2_OPTIONS.items():
        value = getattr(c, name)
        if value not in choices:
            allowed = " or ".join(repr(v) for v in choices)
            raise ConfigError(f"GPT-2 export needs {name}={allowed}, the model has {value!r}")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    ours_to_hf = {}
    for i in range(c.n_layers):
        for hf, ours in _BLOCK_NAMES.items():
            for p in ("weight", "bias"):
                ours_to_hf[f"blocks.{i}.{ours}.{p}"] = f"h.{i}.{hf}.{p}"
    ours_to_hf.update(
        {"tok_emb.weight": "wte.weight", "pos_emb.weight": "wpe.weight"},
        **{"norm_f.weight": "ln_f.weight", "norm_f.bias": "ln_f.bias"},
    )
    tensors: dict[str, torch.Tensor] = {}
    for key, tensor in model.state_dict().items():
        if key == "lm_head.weight":
            if c.tie_weights:
                continue
            # float32 like every other tensor (and config.json's dtype), whatever it trained in
            head = tensor[: c.vocab_size].detach().cpu().float()
            tensors["lm_head.weight"] = head.contiguous().clone()
            continue
        hf = "transformer." + ours_to_hf[key]
        t = tensor.detach().cpu().float()
        if hf.endswith(_CONV1D):
            t = t.t()
        if key == "tok_emb.weight":
            t = t[: c.vocab_size]  # GPT-2 has no padded rows
        tensors[hf] = t.contiguous().clone()
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    special = c.vocab_size - 1 if c.vocab_size == 50257 else None  # <|endoftext|> for GPT-2
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.max_seq_len,
        "n_embd": c.d_model,
        "n_layer": c.n_layers,
        "n_head": c.n_heads,
        "n_inner": c.mlp_hidden,
        "activation_function": _EXPORT_ACTIVATIONS[c.mlp],
        "layer_norm_epsilon": c.norm_eps,
        "resid_pdrop": c.dropout,
        "embd_pdrop": c.dropout,
        "attn_pdrop": c.dropout,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "tie_word_embeddings": c.tie_weights,
        "bos_token_id": special,
        "eos_token_id": special,
        "use_cache": True,
        "dtype": "float32",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder
