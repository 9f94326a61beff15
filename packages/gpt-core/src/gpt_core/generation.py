"""Autoregressive generation: feed the model its own samples, one token at a time.

Rules worth knowing:
- Prompt cropping: the model only ever sees the most recent max_seq_len tokens. A longer
  prompt is cropped to its last max_seq_len tokens before the first step (the returned
  sequence still starts with the whole prompt), and once prompt + generated tokens exceed
  max_seq_len, each step conditions on the last max_seq_len tokens only.
- With the KV cache (the default) each step runs the model on the new token only. When the
  window is full the cache is rebuilt from the last max_seq_len tokens each step, so cached
  and uncached generation give the same tokens.
- Stop ids: a row that samples one of stop_ids is finished; the stop token is kept, and the
  row's later positions repeat it. Generation ends early when every row has finished.
- Reproducibility: a seed draws from a private torch.Generator, so the same seed gives the
  same tokens without touching (or being disturbed by) the global RNG.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch

from gpt_core.config import ConfigError
from gpt_core.decode import DecodeStep, has_hooks
from gpt_core.sampling import check_sampling_args, sample_next

if TYPE_CHECKING:
    from gpt_core.model import GPT


def _decode(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    seed: int | None,
    stop_ids: Sequence[int] | None,
    use_cache: bool,
    return_probs: bool,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """The decoding loop: yields (tokens (B,), probs or None) per step."""
    check_sampling_args(temperature, top_k, top_p, max_new_tokens)
    if idx.dim() != 2 or idx.shape[1] == 0 or idx.dtype != torch.long:
        raise ConfigError(
            f"prompt must be a non-empty LongTensor (batch, time), got {idx.dtype} "
            f"of shape {tuple(idx.shape)}"
        )
    if max_new_tokens == 0:
        return
    window = model.config.max_seq_len
    B = idx.shape[0]
    prompt = idx[:, -window:]  # crop: only the most recent max_seq_len tokens are seen
    T0 = prompt.shape[1]
    # Every token of the visible sequence lives in one preallocated buffer: no per-step cat.
    seq = torch.empty(B, T0 + max_new_tokens, dtype=torch.long, device=idx.device)
    seq[:, :T0] = prompt
    generator = None
    if seed is not None:
        generator = torch.Generator(device=idx.device)
        generator.manual_seed(seed)
    stops = None
    if stop_ids:
        stops = torch.tensor(list(stop_ids), dtype=torch.long, device=idx.device)
        finished = torch.zeros(B, dtype=torch.bool, device=idx.device)
        fill = torch.zeros(B, dtype=torch.long, device=idx.device)  # each row's stop token

    cache = model.new_cache(B, min(window, T0 + max_new_tokens)) if use_cache else None
    # The lean one-token step, unless hooks (a tracer) want to see every module run.
    fast_step = DecodeStep(model) if use_cache and not has_hooks(model) else None
    n = T0  # tokens in seq so far
    logits = model(prompt, cache=cache, last_only=True)[0][:, -1]  # (B, V)
    for step in range(max_new_tokens):
        tokens, probs = sample_next(logits, temperature, top_k, top_p, generator, return_probs)
        if stops is not None:
            tokens = torch.where(finished, fill, tokens)  # finished rows repeat their stop
            hit = torch.isin(tokens, stops) & ~finished
            fill = torch.where(hit, tokens, fill)
            finished |= hit
        seq[:, n] = tokens
        n += 1
        yield tokens, probs
        if step == max_new_tokens - 1 or (stops is not None and bool(finished.all())):
            return
        if cache is None:
            logits = model(seq[:, max(0, n - window) : n], last_only=True)[0][:, -1]
        elif cache.pos < cache.max_len:
            if fast_step is not None:
                logits = fast_step(tokens, cache)
            else:
                logits = model(seq[:, n - 1 : n], cache=cache, last_only=True)[0][:, -1]
        else:  # the window slid past the cache's start: rebuild it from the visible tokens
            cache.reset()
            logits = model(seq[:, n - window : n], cache=cache, last_only=True)[0][:, -1]


def stream(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop_ids: Sequence[int] | None = None,
    use_cache: bool = True,
    return_probs: bool = False,
) -> Iterator[Any]:
    """Yield each step's new tokens (B,), or (tokens, probs (B, vocab_size)) with
    return_probs, where probs is the distribution the tokens were drawn from."""
    was_training = model.training
    model.eval()  # no dropout while sampling
    try:
        with torch.inference_mode():
            for tokens, probs in _decode(
                model,
                idx,
                max_new_tokens,
                temperature,
                top_k,
                top_p,
                seed,
                stop_ids,
                use_cache,
                return_probs,
            ):
                yield (tokens, probs) if return_probs else tokens
    finally:
        model.train(was_training)


def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop_ids: Sequence[int] | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """The prompts idx (B, T) followed by the generated tokens: (B, T + new), where new is
    max_new_tokens, or fewer when every row hit a stop id."""
    new = list(
        stream(model, idx, max_new_tokens, temperature, top_k, top_p, seed, stop_ids, use_cache)
    )
    if not new:
        return idx.clone()
    return torch.cat([idx, torch.stack(new, dim=1)], dim=1)
