"""AdamW with two parameter groups (decayed matrices, everything else undecayed), and
`StepEngine`, which turns micro-batches into one optimizer step.

Weight decay pulls weights towards zero. That regularises the large matrices of attention
and the MLP, which is what it is for. It is NOT applied to:
- biases and norm gains/offsets (1-D tensors): they set scale and offset, and shrinking a
  LayerNorm gain towards 0 would fight the normalisation rather than regularise anything;
- embeddings (token and learned position tables, and so a tied output head): each row is
  only updated when its token appears, so decay would steadily erase rare tokens' vectors.
Parameters are matched by module type (nn.Embedding, norm layers) and by dimension (< 2).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gpt_train.config import OptimSection
from gpt_train.precision import Precision

Batch = tuple[torch.Tensor, torch.Tensor]


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


def build_optimizer(model: nn.Module, optim: OptimSection, device_type: str) -> torch.optim.AdamW:
    """AdamW over `param_groups` with the section's lr, betas, eps and weight decay; the fused
    kernel (one pass over all tensors instead of a loop of small ops) on CUDA and CPU unless
    `optim.fused` says otherwise."""
    use_fused = device_type in ("cuda", "cpu") if optim.fused is None else optim.fused
    return torch.optim.AdamW(
        param_groups(model, optim.weight_decay),
        lr=optim.lr,
        betas=(optim.beta1, optim.beta2),
        eps=optim.eps,
        fused=use_fused or None,
    )


class StepEngine:
    """One optimizer step over a list of micro-batches.

    Each micro-batch's loss is divided by the number of micro-batches, so the summed
    gradients equal the gradient of the mean loss over the whole batch. Under DDP the
    gradient all-reduce (which averages over ranks) only runs on the last micro-step; the
    others run inside `no_sync()`.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        precision: Precision,
        grad_clip: float,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.precision = precision
        self.grad_clip = grad_clip
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def forward_backward(self, batches: list[Batch]) -> torch.Tensor:
        """Accumulate gradients over `batches`; returns the mean loss (a detached scalar)."""
        n = len(batches)
        total = torch.zeros((), device=batches[0][0].device)
        scaler = self.precision.scaler
        ddp = self.model if isinstance(self.model, DistributedDataParallel) else None
        for i, (x, y) in enumerate(batches):
            last = i == n - 1
            ctx = ddp.no_sync() if ddp is not None and not last else contextlib.nullcontext()
            with ctx:
                with self.precision.autocast():
                    _, loss = self.model(x, y)
                assert loss is not None
                total += loss.detach().float()
                scaler.scale(loss / n).backward()
        return total / n

    def update(self) -> torch.Tensor:
        """Unscale, clip (or just measure) the gradient norm, step, and clear gradients;
        returns the norm as a device tensor (reading it would wait for the step: the loop
        reads it at log steps only). Nothing here reads the device back, except the fp16
        GradScaler's overflow check."""
        scaler = self.precision.scaler
        scaler.unscale_(self.optimizer)
        max_norm = self.grad_clip if self.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        scaler.step(self.optimizer)  # skipped by the scaler if fp16 gradients overflowed
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return norm.detach()
