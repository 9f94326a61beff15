"""The one-token decoding step with the KV cache: the hot loop of generation.

The step runs the model's own code on one new token per row: GPT.embed, each Block.compute
(the block's maths, on its norms', attention's and MLP's own forward methods) and GPT.head,
called directly (no nn.Module dispatch, no input checks) with a faster way to apply the
projections (the `linear` seam of gpt_core.linear). So a norm, MLP, attention kind
or position scheme added to its module decodes correctly with no change here; tests compare
the step with the full forward for every combination of them.

On CPU a one-token step's matmuls are matrix-vector products bound by reading the weights
from memory. Two things make that faster: weights stored (in, out), which CPU BLAS streams
about twice as fast as nn.Linear's (out, in), and, with several threads, one chunk of each
product per thread (MKL threads only the larger products itself: on the 2-core development
machine a 256x4096 product took 280 us on one thread and 150 us on two, a 1024x256 one
22 us either way). The threaded form is fast on an idle machine but collapses (~20x
slower) when another process holds the cores, since every product then waits for a
descheduled thread. So the step times both forms as it goes and uses the faster one,
re-checking the other at growing intervals (ModeChooser).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import torch
from torch import nn

from gpt_core.block import Block
from gpt_core.kv_cache import KVCache
from gpt_core.linear import LinearFn, apply_linear
from gpt_core.model import GPT


class _Transposed:
    """One nn.Linear's weight as an (in, out) copy, also viewed as one chunk per thread."""

    def __init__(self, layer: nn.Linear, threads: int) -> None:
        n_out, n_in = layer.weight.shape
        self.chunks = threads if threads > 1 and n_in % threads == 0 else 1
        # A copy for the length of one generation: memory the size of W.
        self.weight = layer.weight.detach().t().contiguous()  # (in, out)
        self.split = self.weight.view(self.chunks, n_in // self.chunks, n_out)
        self.bias = None if layer.bias is None else layer.bias.detach()


class CpuLinear:
    """A `linear(layer, x)` strategy for CPU decoding, x (N, in): every nn.Linear of a model
    applied from its (in, out) copy, split one input chunk per thread when `threaded` is set."""

    def __init__(self, model: nn.Module, threads: int) -> None:
        self.layers = {
            m: _Transposed(m, threads) for m in model.modules() if isinstance(m, nn.Linear)
        }
        self.can_thread = any(w.chunks > 1 for w in self.layers.values())
        self.threaded = False

    def __call__(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        w = self.layers[layer]
        if self.threaded and w.chunks > 1:
            # (c, N, in/c) @ (c, in/c, out) -> (c, N, out): one chunk per thread, then summed
            parts = x.view(x.shape[0], w.chunks, -1).transpose(0, 1)
            y = torch.bmm(parts, w.split).sum(0)
        else:
            y = x @ w.weight
        return y if w.bias is None else y + w.bias


class ModeChooser:
    """Times steps run single-threaded (False) and threaded (True) and picks the faster.

    Steps 0 and 1 try each mode; afterwards the faster one runs, and the other is re-timed
    once after gaps of 8, 16, 32, ... steps (at steps 10, 26, 58, ...), so a change in
    machine load is noticed at a small cost. A mode's time is the least of its last
    `window` steps: a shared host's noise only ever adds time, so one slow step must not
    make the chooser leave the faster mode (it then stayed away until the next re-check,
    about half of a 256-token run), while `window` slow steps in a row, a real change in
    load, still do.
    """

    def __init__(self, enabled: bool, window: int = 3) -> None:
        self.enabled = enabled
        self.recent: dict[bool, deque[float]] = {m: deque(maxlen=window) for m in (False, True)}
        self.steps = 0
        self.gap = 8
        self.next_probe = 2 + self.gap

    def seconds(self, threaded: bool) -> float:
        """The time a step in this mode takes now, as far as the recent steps tell."""
        return min(self.recent[threaded], default=float("inf"))

    def pick(self) -> bool:
        """The mode for the next step."""
        if not self.enabled:
            return False
        if self.steps < 2:
            return self.steps == 1
        best = self.seconds(True) < self.seconds(False)
        if self.steps >= self.next_probe:
            self.gap *= 2
            self.next_probe = self.steps + self.gap
            return not best
        return best

    def record(self, threaded: bool, seconds: float) -> None:
        """How long the step just run in mode `threaded` took."""
        self.recent[threaded].append(seconds)
        self.steps += 1


class DecodeStep:
    """step(tokens (B,), cache) -> logits (B, vocab_size) for the token at cache.pos."""

    def __init__(self, model: GPT, threads: int | None = None) -> None:
        """threads: how many chunks the threaded form splits a product into (default:
        torch's thread count)."""
        self.model = model
        # Each block's own maths on its sub-layers' bound forwards: the same code, without
        # nn.Module.__call__ (about 2 us each, 5 per layer) on every step.
        blocks = [cast(Block, b) for b in model.blocks]
        self.blocks = [(b.compute, b.direct_parts()) for b in blocks]
        self.cpu: CpuLinear | None = None
        self.linear: LinearFn = apply_linear
        if model.tok_emb.weight.device.type == "cpu":
            self.cpu = CpuLinear(model, threads or torch.get_num_threads())
            self.linear = self.cpu
        self.modes = ModeChooser(enabled=self.cpu is not None and self.cpu.can_thread)

    def __call__(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        threaded = self.modes.pick()
        if self.cpu is not None:
            self.cpu.threaded = threaded
        start = time.perf_counter()
        x, rope = self.model.embed(tokens[:, None], cache.pos)
        x = x.view(x.shape[0], -1)  # (B, d): 2-D activations make cheaper matmuls
        for compute, parts in self.blocks:
            x = compute(x, parts, rope, cache, self.linear)
        cache.advance(1)
        logits = self.model.head(x, self.linear)  # (B, vocab_size)
        self.modes.record(threaded, time.perf_counter() - start)
        return logits


@contextmanager
def direct_attributes(model: nn.Module) -> Iterator[None]:
    """While open, every submodule's parameters, buffers and children are also plain
    instance attributes, so `self.qkv` in a forward is an ordinary attribute read instead of
    a call to nn.Module.__getattr__ (torch's fallback for registered members: about 40 calls
    a token on a 4-layer model, ~10% of a small model's decoding step).

    The members stay registered, so state_dict, parameters() and hooks see no difference;
    assigning a parameter or a child meanwhile still works (nn.Module.__setattr__ drops the
    copy). On exit the copies are removed; nested or concurrent uses only add what is missing.
    """
    added: list[tuple[dict[str, object], dict[str, object]]] = []
    for m in model.modules():
        plain: dict[str, object] = m.__dict__
        members: dict[str, object] = {**m._parameters, **m._buffers, **m._modules}
        copies = {k: v for k, v in members.items() if k not in plain}
        plain.update(copies)
        added.append((plain, copies))
    try:
        yield
    finally:
        for plain, copies in added:
            for k, v in copies.items():
                if plain.get(k) is v:  # still our copy
                    del plain[k]


def has_hooks(model: nn.Module) -> bool:
    """Whether any module has forward hooks (e.g. a tracer): the step calls the sub-layers'
    forward methods directly, which bypasses hooks, so generation then runs GPT.forward."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
