"""Choosing the next token from the model's logits: greedy, temperature, top-k, top-p."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set to -inf every logit outside the top-k and outside the top-p nucleus. (B, V)."""
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1) the k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = F.softmax(sorted_logits, dim=-1)
        # Keep the smallest prefix whose mass reaches top_p: drop a token when the mass
        # strictly before it already does. The most likely token is always kept.
        drop_sorted = (torch.cumsum(probs, dim=-1) - probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    return_probs: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pick one token per row of logits (B, V) -> (tokens (B,), probs (B, V) or None).

    temperature 0 is greedy: the argmax, with no randomness (probs, if asked for, are then
    the softmax of the filtered logits at temperature 1, to show the runners-up).
    """
    if temperature == 0 and not return_probs:
        return logits.argmax(dim=-1), None  # the fast path: no softmax, no sort
    logits = filter_logits(logits.float(), top_k, top_p)
    if temperature == 0:
        probs = F.softmax(logits, dim=-1)
        return probs.argmax(dim=-1), probs
    probs = F.softmax(logits / temperature, dim=-1)
    tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, (probs if return_probs else None)
