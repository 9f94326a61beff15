"""AdamW with two parameter groups (decayed matrices, everything else undecayed), or Muon for
the blocks' matrices with that AdamW for the rest (`optim.name`), and `StepEngine`, which
turns micro-batches into one optimizer step.

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
from torch.optim._muon import _adjust_lr  # torch's own Muon lr scaling, shared by Fp32Muon

from gpt_train.config import OptimSection
from gpt_train.errors import TrainError
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


def build_optimizer(
    model: nn.Module, optim: OptimSection, device_type: str
) -> torch.optim.Optimizer:
    """The optimizer `optim.name` asks for, with the section's lr, betas, eps and weight decay.

    adamw: AdamW over `param_groups`; the fused kernel (one pass over all tensors instead of
    a loop of small ops) on CUDA and CPU unless `optim.fused` says otherwise.
    muon: `MuonAdamW`, Muon for the 2-D matrices inside the blocks and that AdamW for the rest.
    """
    use_fused = device_type in ("cuda", "cpu") if optim.fused is None else optim.fused
    matrices = muon_params(model) if optim.name == "muon" else []
    taken = {id(p) for p in matrices}
    groups = [
        {**g, "params": [p for p in g["params"] if id(p) not in taken]}
        for g in param_groups(model, optim.weight_decay)
    ]
    adamw = torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=optim.lr,
        betas=(optim.beta1, optim.beta2),
        eps=optim.eps,
        fused=use_fused or None,
    )
    if optim.name == "adamw":
        return adamw
    # match_rms_adamw scales each matrix's orthogonalised update to AdamW's typical RMS, so
    # the schedule's lr (and weight decay) mean the same for both halves.
    muon_class = Fp32Muon if device_type == "cpu" else torch.optim.Muon
    muon = muon_class(
        matrices,
        lr=optim.lr * optim.muon_lr_scale,
        weight_decay=optim.weight_decay,
        momentum=optim.muon_momentum,
        adjust_lr_fn="match_rms_adamw",
    )
    return MuonAdamW(muon, adamw, optim.muon_lr_scale)


def muon_params(model: nn.Module) -> list[nn.Parameter]:
    """The 2-D weight matrices inside the transformer blocks (attention and MLP projections):
    what Muon orthogonalises. Embeddings, the head, norms and biases are not among them."""
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Module):
        raise TrainError(
            f"optim.name = 'muon' needs a model with blocks, got {type(model).__name__}"
        )
    return [p for p in blocks.parameters() if p.dim() == 2 and p.requires_grad]


class Fp32Muon(torch.optim.Muon):
    """torch.optim.Muon with its Newton-Schulz orthogonalisation in float32 (for CPUs).

    torch runs the iteration in bfloat16, which is right on GPUs; a CPU without bf16 matrix
    units (the 2-core development machine) multiplies bf16 about 16x slower than fp32, enough
    to make the optimizer step cost more than the forward and backward passes. Everything else
    is torch's: the parameter groups, the momentum buffers (so checkpoints are the same), the
    shape-based lr adjustment and the decoupled weight decay.
    """

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        """One Muon update of every parameter with a gradient."""
        for group in self.param_groups:
            params: list[torch.Tensor] = []
            grads: list[torch.Tensor] = []
            buffers: list[torch.Tensor] = []
            self._init_group(group, params, grads, buffers)
            lr, momentum = float(group["lr"]), float(group["momentum"])
            for param, grad, buf in zip(params, grads, buffers, strict=True):
                buf.lerp_(grad, 1 - momentum)
                update = grad.lerp(buf, momentum) if group["nesterov"] else buf
                update = _newton_schulz(
                    update.float(), group["ns_coefficients"], group["ns_steps"], group["eps"]
                )
                param.mul_(1 - lr * group["weight_decay"])
                scaled = _adjust_lr(lr, group["adjust_lr_fn"], param.shape)
                param.add_(update.to(param.dtype), alpha=-scaled)


def _newton_schulz(
    g: torch.Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> torch.Tensor:
    """The quintic Newton-Schulz iteration torch.optim.Muon uses (on the wide orientation,
    spectral norm first brought to <= 1), in g's own dtype: an approximate U V^T of g."""
    a, b, c = coefficients
    tall = g.size(0) > g.size(1)
    x = g.T if tall else g
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


class MuonAdamW(torch.optim.Optimizer):
    """Muon and AdamW stepped together behind one optimizer, so the training loop, the grad
    scaler, checkpoints and step hooks see a single object.

    Its param_groups are the schedule's view (the loop writes each group's "lr"): Muon's groups
    first, then AdamW's, each with its own "lr_scale". `step` copies lr x lr_scale into the two
    inner optimizers and steps both; the state lives in them (state_dict has one entry each).
    """

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer, scale: float):
        self.inner = {"muon": muon, "adamw": adamw}
        views = [
            {
                "params": g["params"],
                "lr": g["lr"] / (scale if name == "muon" else 1.0),
                "lr_scale": scale if name == "muon" else 1.0,
            }
            for name, opt in self.inner.items()
            for g in opt.param_groups
        ]
        super().__init__(views, {})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:  # type: ignore[override]
        """One update of every parameter: Muon's matrices, then AdamW's tensors."""
        inner = [g for opt in self.inner.values() for g in opt.param_groups]
        for view, group in zip(self.param_groups, inner, strict=True):
            group["lr"] = view["lr"] * view["lr_scale"]
        for opt in self.inner.values():
            opt.step()

    def state_dict(self) -> dict[str, Any]:
        """{"muon": ..., "adamw": ...}: each inner optimizer's own state dict."""
        return {name: opt.state_dict() for name, opt in self.inner.items()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (a plain AdamW state is refused by name)."""
        if set(state_dict) != set(self.inner):
            raise TrainError(
                "the checkpoint's optimizer state is not Muon+AdamW (optim.name = 'muon'); "
                "resume with the optim.name it was trained with"
            )
        for name, opt in self.inner.items():
            opt.load_state_dict(state_dict[name])


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
                    _, loss = self.model(x, y, return_logits=False)
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
