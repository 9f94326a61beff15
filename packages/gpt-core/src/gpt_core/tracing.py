"""An opt-in tracer that shows what happens inside one forward pass (for learners).

    with trace(model) as t:
        model(idx)
    print(t.format())      # every module in call order: shapes and mean/std/min/max
    t.attention[0]         # layer 0's attention weights, (B, n_heads, T, T)

Zero cost when off: the hooks exist only inside the `with` block, and attention layers hand
back their weights only while their `capture_weights` flag is set (it makes them use the
manual path, which gives the same outputs as sdpa).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gpt_core.attention import CausalSelfAttention


@dataclass
class TraceRecord:
    """One module call: its name, input and output shapes, and output statistics."""

    name: str
    kind: str
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    mean: float = float("nan")
    std: float = float("nan")
    min: float = float("nan")
    max: float = float("nan")


@dataclass
class Trace:
    """What a traced forward pass recorded."""

    records: list[TraceRecord] = field(default_factory=list)
    attention: list[torch.Tensor] = field(default_factory=list)  # per layer (B, H, T, T)

    def format(self) -> str:
        """A printable table, one row per module call, in call order."""
        header = (
            f"{'module':<34} {'type':<20} {'input':<16} {'output':<16} "
            f"{'mean':>9} {'std':>9} {'min':>9} {'max':>9}"
        )
        lines = [header, "-" * len(header)]
        for r in self.records:
            name = r.name or "(model)"
            lines.append(
                f"{name:<34} {r.kind:<20} {_shapes(r.input_shapes):<16} "
                f"{_shapes(r.output_shapes):<16} "
                f"{r.mean:>9.4f} {r.std:>9.4f} {r.min:>9.4f} {r.max:>9.4f}"
            )
        for i, w in enumerate(self.attention):
            lines.append(f"attention weights, layer {i}: {tuple(w.shape)}  (B, heads, T, T)")
        return "\n".join(lines)


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return " ".join("x".join(map(str, s)) for s in shapes) or "-"


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in a module's inputs or outputs (a tensor, or a tuple/list holding some)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [v for v in value if isinstance(v, torch.Tensor)]
    return []


@contextmanager
def trace(model: nn.Module) -> Iterator[Trace]:
    """Record every module call of the forward passes run inside the block."""
    result = Trace()
    handles = []
    pending: dict[int, list[TraceRecord]] = {}  # module id -> records awaiting outputs

    def pre_hook(module: nn.Module, args: tuple[Any, ...], name: str) -> None:
        # Reserve the record at call time, so records are in call (not completion) order.
        record = TraceRecord(name, type(module).__name__, [tuple(t.shape) for t in _tensors(args)])
        result.records.append(record)
        pending.setdefault(id(module), []).append(record)

    def post_hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        record = pending[id(module)].pop()
        outs = _tensors(output)
        record.output_shapes = [tuple(t.shape) for t in outs]
        if outs and outs[0].is_floating_point() and outs[0].numel() > 0:
            y = outs[0].detach().float()
            record.mean, record.min, record.max = y.mean().item(), y.min().item(), y.max().item()
            record.std = y.std().item() if y.numel() > 1 else 0.0
        if isinstance(module, CausalSelfAttention) and module.last_weights is not None:
            result.attention.append(module.last_weights)
            module.last_weights = None

    attention_layers = [m for m in model.modules() if isinstance(m, CausalSelfAttention)]
    try:
        for name, module in model.named_modules():
            handles.append(
                module.register_forward_pre_hook(
                    lambda mod, args, name=name: pre_hook(mod, args, name)
                )
            )
            handles.append(module.register_forward_hook(post_hook))
        for layer in attention_layers:
            layer.capture_weights = True
        yield result
    finally:
        for h in handles:
            h.remove()
        for layer in attention_layers:
            layer.capture_weights = False
            layer.last_weights = None
