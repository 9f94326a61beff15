"""AdamW with two parameter groups: decayed matrices, and everything else undecayed.

Weight decay pulls weights towards zero. That regularises the large matrices of attention
and the MLP, which is what it is for. It is NOT applied to:
- biases and norm gains/offsets (1-D tensors): they set scale and offset, and shrinking a
  LayerNorm gain towards 0 would fight the normalisation rather than regularise anything;
- embeddings (token and learned position tables, and so a tied output head): each row is
  only updated when its token appears, so decay would steadily erase rare tokens' vectors.
Parameters are matched by module type (nn.Embedding, norm layers) and by dimension (< 2).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """[{"params": decayed, "weight_decay": wd}, {"params": the rest, "weight_decay": 0}]."""
    no_decay_ids: set[int] = set()
    for module in model.modules():
        is_norm = (
            isinstance(module, nn.LayerNorm | nn.RMSNorm) or "norm" in type(module).__name__.lower()
        )
        if isinstance(module, nn.Embedding) or is_norm:
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in model.parameters():  # shared (tied) tensors appear once
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (no_decay if p.dim() < 2 or id(p) in no_decay_ids else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float],
    eps: float,
    device_type: str,
    fused: bool | None = None,
) -> torch.optim.AdamW:
    """AdamW over `param_groups`; the fused kernel (one pass over all tensors instead of a
    loop of small ops) on CUDA and CPU unless `fused` says otherwise."""
    use_fused = device_type in ("cuda", "cpu") if fused is None else fused
    return torch.optim.AdamW(
        param_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, fused=use_fused or None
    )
