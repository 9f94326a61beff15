"""Rotary position embeddings (RoPE, Su et al. 2021).

Each pair of channels of a query or key is rotated by an angle proportional to its position,
angle = pos * theta^(-2i/head_dim) for pair i. A rotation by pos_q in the query and by pos_k
in the key leaves their dot product depending only on pos_q - pos_k: relative positions for
free, with no parameters, and norms unchanged.

Pairing: we use the *half-split* layout, pairing channel i with channel i + head_dim/2 (as
GPT-NeoX and the Hugging Face LLaMA code do), rather than the paper's *interleaved* pairs
(0,1), (2,3), ... The two are the same maths up to a fixed permutation of the head's
channels, which a model trained from scratch absorbs into its q/k weights; half-split needs
only two contiguous slices and a concatenation, no strided reshape, so it is simpler to read
and cheaper to run.
"""

from __future__ import annotations

import torch


def rope_cache(
    seq_len: int, head_dim: int, theta: float = 10000.0, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, each (seq_len, head_dim), for positions 0..seq_len-1."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    pos = torch.arange(seq_len, dtype=torch.float64)
    angles = torch.outer(pos, inv_freq)  # (seq_len, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # both halves of a pair share the angle
    return angles.cos().float().to(device), angles.sin().float().to(device)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) over the two halves of the last dimension."""
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (..., T, head_dim), e.g. (B, H, T, head_dim), by the cos/sin rows
    (T, head_dim) of its positions."""
    return x * cos + rotate_half(x) * sin
