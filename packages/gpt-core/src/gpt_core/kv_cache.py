"""A preallocated key/value cache for fast autoregressive decoding.

Without a cache, generating token t recomputes keys and values for all t previous tokens.
With it, each step computes them for the new token only and appends them here. Memory is
allocated once for the whole generation, so a decoding step never allocates or copies the
past: it writes one slot and reads a view.
"""

from __future__ import annotations

import torch


class KVCache:
    """Keys and values of every layer: per layer one (2, B, n_heads, max_len, head_dim) tensor.

    kv[layer][0] holds keys and kv[layer][1] values, side by side so that a step stores its
    keys and values with one copy.
    Each layer has its own tensor (not a slice of one big one) so that writing layer 1 does
    not count as modifying layer 0's keys, which autograd would otherwise refuse.
    """

    def __init__(
        self,
        n_layers: int,
        batch_size: int,
        n_heads: int,
        max_len: int,
        head_dim: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        shape = (2, batch_size, n_heads, max_len, head_dim)
        self.kv = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.max_len = max_len
        self.pos = 0  # number of positions already stored (the next token's position)

    def update(self, layer: int, kv: torch.Tensor) -> torch.Tensor:
        """Store new keys and values kv (2, B, H, T, hd) at the current position; return all
        of them so far, (2, B, H, pos + T, hd) (a view, no copy)."""
        pos, T = self.pos, kv.shape[3]
        if pos + T > self.max_len:
            raise ValueError(f"KV cache full: {pos + T} positions > max_len {self.max_len}")
        slab = self.kv[layer]
        slab.narrow(3, pos, T).copy_(kv)  # keys and values in one copy
        return slab.narrow(3, 0, pos + T)

    def advance(self, n: int) -> None:
        """Move past n positions (called once per forward, after every layer wrote them)."""
        self.pos += n

    def reset(self) -> None:
        """Forget everything (the memory is kept and overwritten)."""
        self.pos = 0
