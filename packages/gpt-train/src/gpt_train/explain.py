"""A look inside one training step, for learners (`uv run train --explain N`).

    with explain_step(model, optimizer, step=1, write=print):
        loss = engine.forward_backward(batches)   # the step exactly as training runs it
        engine.update()

prints the shapes through the embeddings, every block (Q, K, V, heads, the 1/sqrt(head_dim)
scale, an excerpt of the causal mask, a check that each attention row sums to 1; the MLP's
in -> hidden -> out), the final norm, the logits and the loss next to ln(vocab); then each
parameter's gradient mean and norm, its update/weight ratio and the learning rate used.

Everything is observed through forward hooks and optimizer step hooks that exist only
inside the `with` block, so ordinary steps pay nothing, and the observed step computes
exactly what it would without them (the hooks only read tensors, under no_grad, and draw
no random numbers). The attention weights are recomputed from the layer's own q and k
(`CausalSelfAttention.split_heads`, `manual_attention`), since the sdpa kernel never
materialises them. Only the first micro-batch's forward pass is described.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from gpt_core import GPT
from gpt_core.attention import CausalSelfAttention, causal_mask, manual_attention
from torch import nn
from torch.utils.hooks import RemovableHandle

EXCERPT = 5  # rows and columns of the mask and weights shown


def explain_due(step: int, first: int, interval: int) -> bool:
    """Whether step (1-based) is explained: the first `first` steps, then every `interval`
    (0: never after the first ones)."""
    return step <= first or (interval > 0 and step % interval == 0)


def shape(t: torch.Tensor) -> str:
    """A tensor's shape as "(4, 2, 32, 16)"."""
    return "(" + ", ".join(str(n) for n in t.shape) + ")"


def _grid(rows: torch.Tensor, fmt: Callable[[float], str]) -> list[str]:
    return ["      " + " ".join(fmt(float(v)) for v in row) for row in rows.tolist()]


@dataclass
class _Forward:
    """What the hooks have written so far about the first forward pass."""

    lines: list[str] = field(default_factory=list)
    active: bool = False  # inside the first forward of the model
    done: bool = False
    rope: dict[int, Any] = field(default_factory=dict)  # layer -> the rope rows it was given
    mlp_steps: list[str] = field(default_factory=list)


def _attention_lines(attn: CausalSelfAttention, qkv: torch.Tensor, rope: Any) -> list[str]:
    """Q, K, V, the scale, the mask excerpt and the row-sum check of one attention layer."""
    B, T = qkv.shape[0], qkv.shape[1]
    with torch.no_grad(), torch.autocast(qkv.device.type, enabled=False):
        q, k, v = attn.split_heads(qkv.detach().float(), B, T, rope).unbind(0)
        _, weights = manual_attention(q, k, v)  # (B, H, T, T), whichever kind trains
    hd, n = attn.head_dim, min(EXCERPT, T)
    row_error = float((weights.sum(-1) - 1).abs().max())
    ok = "yes" if row_error < 1e-4 else "NO"
    mask = causal_mask(T, T, qkv.device)[:n, :n].int()
    return [
        f"    attention ({attn.kind}): {attn.n_heads} heads of head_dim {hd}; "
        f"qkv projection -> {shape(qkv)}",
        f"      Q {shape(q)}  K {shape(k)}  V {shape(v)}  = (B, heads, T, head_dim)"
        + ("; Q and K rotated by RoPE" if rope is not None else ""),
        f"      scores = Q K^T * scale, scale = 1/sqrt({hd}) = {1 / math.sqrt(hd):.4f}"
        f" -> (B, heads, T, T) = {shape(weights)}",
        f"      causal mask, first {n}x{n} (1 = may attend; query rows, key columns):",
        *_grid(mask, lambda x: f"{x:.0f}"),
        f"      attention weights = softmax(masked scores), batch 0 head 0, first {n}x{n}:",
        *_grid(weights[0, 0, :n, :n], lambda x: f"{x:.3f}"),
        f"      every row of weights sums to 1: {ok} (max |sum - 1| = {row_error:.1e})",
    ]


def _forward_hooks(model: GPT, rec: _Forward) -> list[RemovableHandle]:
    """Hooks that write the first forward pass's story into rec.lines."""
    handles: list[RemovableHandle] = []
    lines = rec.lines

    def on(module: nn.Module, fn: Callable[..., None], pre: bool = False) -> None:
        def hook(*a: Any) -> None:
            if rec.active:
                fn(*a)

        reg = module.register_forward_pre_hook if pre else module.register_forward_hook
        handles.append(reg(hook))

    def model_pre(module: nn.Module, args: tuple[Any, ...]) -> None:
        if rec.done or rec.active:
            return
        rec.active = True
        idx = args[0]
        lines.append(f"  input: idx {shape(idx)} = (B, T) token ids; targets: idx shifted by one")

    def model_post(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if not rec.active:
            return
        logits, loss = out
        B, T = args[0].shape
        d, V = model.config.d_model, model.config.vocab_size or model.config.padded_vocab_size
        # The training step asks for the loss alone: the model then applies lm_head inside
        # the loss (in fp32 a chunk of positions at a time) and returns no logits.
        where = "" if logits is not None else ", inside the loss (fp32: a chunk at a time)"
        lines.append(f"  lm_head: ({B}, {T}, {d}) -> ({B}, {T}, {V}){where}")
        lines.append(f"  logits ({B}, {T}, {V}) = (B, T, vocab): a score for every next token")
        if loss is not None:
            lines.append(
                f"  loss {float(loss.detach()):.4f} (cross-entropy); a uniform guess over {V} "
                f"tokens scores ln({V}) = {math.log(V):.4f}"
            )
        rec.active, rec.done = False, True

    handles.append(model.register_forward_pre_hook(model_pre))
    handles.append(model.register_forward_hook(model_post))
    c = model.config
    on(
        model.tok_emb,
        lambda m, a, o: lines.append(
            f"  token embedding: {shape(a[0])} -> {shape(o)} = (B, T, d_model), "
            f"a row of the ({c.padded_vocab_size}, {c.d_model}) table per token"
        ),
    )

    def embedded(m: nn.Module, a: Any, o: torch.Tensor) -> None:
        T = o.shape[1]
        if c.pos_encoding == "learned":
            lines.append(f"  + position embedding: rows 0..{T - 1} of pos_emb, ({T}, {c.d_model})")
        else:
            lines.append("  positions: none added here; RoPE rotates Q and K in every attention")
        lines.append(f"  x {shape(o)} enters the blocks")

    on(model.drop, embedded)
    for i, block in enumerate(model.blocks):
        _block_hooks(i, block, rec, on)
    on(model.norm_f, lambda m, a, o: lines.append(f"  final norm: {shape(o)}"))
    return handles


def _block_hooks(i: int, block: nn.Module, rec: _Forward, on: Callable[..., None]) -> None:
    lines = rec.lines
    attn = block.attn
    assert isinstance(attn, CausalSelfAttention)
    on(block, lambda m, a: lines.append(f"  block {i}: in {shape(a[0])}"), pre=True)
    on(block.norm1, lambda m, a, o: lines.append(f"    norm1 ({type(m).__name__}) {shape(o)}"))
    on(attn, lambda m, a: rec.rope.__setitem__(i, a[1] if len(a) > 1 else None), pre=True)
    on(attn.qkv, lambda m, a, o: lines.extend(_attention_lines(attn, o, rec.rope.get(i))))
    on(attn, lambda m, a, o: lines.append(f"      out after proj {shape(o)}, added to x"))
    on(block.norm2, lambda m, a, o: lines.append(f"    norm2 ({type(m).__name__}) {shape(o)}"))
    on(block.mlp, lambda m, a: rec.mlp_steps.clear(), pre=True)
    mlp = block.mlp
    assert isinstance(mlp, nn.Module)
    for name, layer in mlp.named_children():
        if isinstance(layer, nn.Linear):
            on(layer, lambda m, a, o, name=name: rec.mlp_steps.append(f"{name} {shape(o)}"))

    def mlp_done(m: nn.Module, a: Any, o: torch.Tensor) -> None:
        steps = " -> ".join(rec.mlp_steps)
        lines.append(f"    mlp ({type(m).__name__}): in {shape(a[0])} -> {steps}, added to x")

    on(block.mlp, mlp_done)
    on(block, lambda m, a, o: lines.append(f"  block {i}: out {shape(o)}"))


@dataclass
class _Update:
    """Gradients and weights as the optimizer saw them, and its learning rates."""

    lines: list[str] = field(default_factory=list)
    before: dict[str, torch.Tensor] = field(default_factory=dict)
    stepped: bool = False


def _param_table(
    model: nn.Module, optimizer: torch.optim.Optimizer, rec: _Update
) -> tuple[Callable[..., None], Callable[..., None]]:
    """The optimizer's step pre-hook (gradients, a copy of the weights) and post-hook
    (update/weight ratios)."""
    params = dict(model.named_parameters())  # a tied tensor is listed once
    group_of = {
        id(p): ("decay" if g["weight_decay"] > 0 else "no decay")
        for g in optimizer.param_groups
        for p in g["params"]
    }
    grads: dict[str, tuple[float, float]] = {}

    @torch.no_grad()
    def pre(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        for name, p in params.items():
            if p.grad is not None:
                g = p.grad.float()
                grads[name] = (float(g.mean()), float(g.norm()))
            rec.before[name] = p.detach().float().clone()

    @torch.no_grad()
    def post(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        rec.stepped = True
        head = f"    {'parameter':<28} {'shape':<12} {'group':<9} "
        rec.lines.append(head + f"{'grad mean':>11} {'grad norm':>10} {'update/weight':>14}")
        for name, p in params.items():
            w0 = rec.before[name]
            w_norm = float(w0.norm())
            step_norm = float((p.detach().float() - w0).norm())
            ratio = f"{step_norm / w_norm:>14.3e}" if w_norm > 0 else f"{'(w_old = 0)':>14}"
            mean, norm = grads.get(name, (math.nan, math.nan))
            dims = "x".join(str(n) for n in p.shape)
            rec.lines.append(
                f"    {name:<28} {dims:<12} {group_of.get(id(p), '-'):<9} "
                f"{mean:>11.3e} {norm:>10.3e} {ratio}"
            )
        for g in opt.param_groups:
            name = "decay" if g["weight_decay"] > 0 else "no decay"
            rec.lines.append(
                f"  group {name!r}: {len(g['params'])} tensors, learning rate {g['lr']:.3e}, "
                f"weight decay {g['weight_decay']}"
            )
        rec.lines.append("  weights updated.")

    return pre, post


@contextmanager
def explain_step(
    model: GPT,
    optimizer: torch.optim.Optimizer,
    step: int,
    write: Callable[[str], object],
    forward: bool = True,
) -> Iterator[None]:
    """Describe the training step run inside the block (forward, backward, optimizer step)
    and hand the text to `write` when it ends; nothing is left attached afterwards.

    forward=False leaves the forward pass alone (a torch.compile'd model: dynamo would
    trace the hooks into its graph, and that graph outlives them)."""
    fwd, upd = _Forward(), _Update()
    handles = _forward_hooks(model, fwd) if forward else []
    pre, post = _param_table(model, optimizer, upd)
    handles += [optimizer.register_step_pre_hook(pre), optimizer.register_step_post_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        upd.before.clear()
    if not forward:
        fwd.lines.append("  (not shown with train.compile: the forward pass is one compiled graph)")
    if not upd.stepped:
        upd.lines.append("  the optimizer step was skipped (fp16 gradients overflowed)")
    text = [f"=== explain step {step}: forward (first micro-batch) ===", *fwd.lines]
    text += [
        "--- backward: gradients as the optimizer used them (unscaled, clipped), and "
        "update/weight = |w_new - w_old| / |w_old| ---",
        *upd.lines,
    ]
    write("\n".join(text))
