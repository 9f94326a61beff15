"""A lean single-token decoding step with the KV cache: the hot loop of generation.

At batch 1 a small model's decoding step is mostly Python and dispatch overhead, not maths:
each nn.Module call and each tiny tensor op costs microseconds. This step does the exact
same computation as GPT.forward for one new token per row, but with plain functional calls
on weights gathered once up front, 2-D (B, d) activations, and one copy to store each
layer's new key and value. Tests check it against the full forward for every architecture.

On CPU the matmuls are matrix-vector products bound by reading the weights from memory.
Two things make that faster: weights stored (in, out), which CPU BLAS streams about twice as
fast as nn.Linear's (out, in), and, with several threads, one chunk of each product per
thread (BLAS runs a matrix-vector product on one core). The threaded form is fast on an idle
machine but collapses (~20x slower) when another process holds the cores, since every
product then waits for a descheduled thread. So the step times both forms as it goes and
uses the faster one, re-checking the other at growing intervals (_ModeChooser).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from gpt_core.block import Block
from gpt_core.kv_cache import KVCache

if TYPE_CHECKING:
    from gpt_core.model import GPT


def _weights(module: nn.Module, *names: str) -> list[torch.Tensor | None]:
    """The named parameters of a module, None for absent ones (e.g. bias=False)."""
    return [getattr(module, n, None) for n in names]


class _Linear:
    """y = x W^T + b for x (B, in); on CPU, W is kept transposed, (in, out), and can be
    applied one input-chunk per thread (see the module docstring)."""

    def __init__(self, module: nn.Module) -> None:
        weight, bias = _weights(module, "weight", "bias")
        assert weight is not None
        self.bias = bias
        self.weight = weight
        self.chunks = 0  # 0: plain F.linear (not on CPU)
        if weight.device.type == "cpu":
            n_out, n_in = weight.shape
            threads = torch.get_num_threads()
            self.chunks = threads if threads > 1 and n_in % threads == 0 else 1
            # (in, out) copy for the duration of one generation: memory the size of W
            self.weight = weight.detach().t().contiguous()
            self.split = self.weight.view(self.chunks, n_in // self.chunks, n_out)

    def __call__(self, x: torch.Tensor, threaded: bool) -> torch.Tensor:
        if self.chunks == 0:
            return F.linear(x, self.weight, self.bias)
        if threaded and self.chunks > 1:
            # (c, B, in/c) @ (c, in/c, out) -> (c, B, out): one chunk per thread, then summed
            y = torch.bmm(x.view(x.shape[0], self.chunks, -1).transpose(0, 1), self.split)
            y = y.sum(0)
        else:
            y = x @ self.weight
        return y if self.bias is None else y + self.bias


class _ModeChooser:
    """Times steps run single-threaded (False) and threaded (True) and picks the faster.

    Steps 0 and 1 try each mode; afterwards the faster one runs, and the other is retried
    after 8, 16, 32, ... steps, so a change in machine load is noticed at a small cost.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.seconds = {False: float("inf"), True: float("inf")}
        self.steps = 0
        self.next_probe = 10
        self.interval = 16

    def pick(self) -> bool:
        if not self.enabled:
            return False
        if self.steps < 2:
            return self.steps == 1
        best = self.seconds[True] < self.seconds[False]
        if self.steps >= self.next_probe:
            self.next_probe = self.steps + self.interval
            self.interval *= 2
            return not best
        return best

    def record(self, threaded: bool, seconds: float) -> None:
        self.seconds[threaded] = seconds
        self.steps += 1


class DecodeStep:
    """step(tokens (B,), cache) -> logits (B, vocab_size) for the token at cache.pos."""

    def __init__(self, model: GPT) -> None:
        c = model.config
        self.config = c
        self.d, self.H, self.hd = c.d_model, c.n_heads, c.head_dim
        self.tok_emb = model.tok_emb.weight
        self.pos_emb = model.pos_emb.weight if model.pos_emb is not None else None
        self.rope = (model.rope_cos, model.rope_sin) if c.pos_encoding == "rope" else None
        self.layers: list[dict[str, Any]] = []
        for module in model.blocks:
            block = cast(Block, module)
            attn, mlp = block.attn, block.mlp
            self.layers.append(
                {
                    "norm1": _weights(block.norm1, "weight", "bias"),
                    "qkv": _Linear(attn.qkv),
                    "proj": _Linear(attn.proj),
                    "norm2": _weights(block.norm2, "weight", "bias"),
                    "mlp": [_Linear(getattr(mlp, n)) for n in _mlp_names(c.mlp)],
                }
            )
        self.norm_f = _weights(model.norm_f, "weight", "bias")
        self.head = _Linear(model.lm_head)
        self.modes = _ModeChooser(enabled=self.head.chunks > 1)

    def _norm(self, x: torch.Tensor, w: list[torch.Tensor | None]) -> torch.Tensor:
        c = self.config
        if c.norm == "rmsnorm":
            return F.rms_norm(x, (self.d,), w[0], c.norm_eps)
        return F.layer_norm(x, (self.d,), w[0], w[1], c.norm_eps)

    def _mlp(self, x: torch.Tensor, w: list[_Linear], t: bool) -> torch.Tensor:
        kind = self.config.mlp
        if kind == "swiglu":
            gate, up, proj = w
            return proj(F.silu(gate(x, t)) * up(x, t), t)
        fc, proj = w
        h = fc(x, t)
        return proj(F.gelu(h, approximate="tanh") if kind == "gelu" else F.relu(h), t)

    def __call__(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        threaded = self.modes.pick()
        start = time.perf_counter()
        logits = self._step(tokens, cache, threaded)
        self.modes.record(threaded, time.perf_counter() - start)
        return logits

    def _step(self, tokens: torch.Tensor, cache: KVCache, t: bool) -> torch.Tensor:
        B, pos = tokens.shape[0], cache.pos
        end = pos + 1
        if end > cache.max_len:
            raise ValueError(f"KV cache full: {end} positions > max_len {cache.max_len}")
        x = F.embedding(tokens, self.tok_emb)  # (B, d)
        cos_sin = None
        if self.pos_emb is not None:
            x = x + self.pos_emb[pos]
        elif self.rope is not None:
            cos_sin = (self.rope[0][pos], self.rope[1][pos])  # (hd,) each
        for i, w in enumerate(self.layers):
            h = self._norm(x, w["norm1"])
            qkv = w["qkv"](h, t).view(B, 3, self.H, self.hd).transpose(0, 1)  # (3, B, H, hd)
            kv_cache = cache.kv[i]  # (2, B, H, max_len, hd)
            if cos_sin is not None:
                q = _rope(qkv[0], *cos_sin)
                kv_cache[0, :, :, pos] = _rope(qkv[1], *cos_sin)
                kv_cache[1, :, :, pos] = qkv[2]
            else:
                q = qkv[0]
                kv_cache[:, :, :, pos] = qkv[1:]  # new key and value in one copy
            k = kv_cache[0].narrow(2, 0, end)  # (B, H, end, hd), a view
            v = kv_cache[1].narrow(2, 0, end)
            y = F.scaled_dot_product_attention(q.unsqueeze(2), k, v)  # (B, H, 1, hd)
            x = x + w["proj"](y.view(B, self.d), t)
            x = x + self._mlp(self._norm(x, w["norm2"]), w["mlp"], t)
        cache.advance(1)
        logits = self.head(self._norm(x, self.norm_f), t)  # (B, padded vocab)
        return logits[:, : self.config.vocab_size]


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """apply_rope for one position: x (B, H, hd), cos/sin (hd,)."""
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


def _mlp_names(kind: str) -> tuple[str, ...]:
    return ("gate", "up", "proj") if kind == "swiglu" else ("fc", "proj")


def has_hooks(model: nn.Module) -> bool:
    """Whether any module has forward hooks (e.g. a tracer), which the lean step would skip."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
