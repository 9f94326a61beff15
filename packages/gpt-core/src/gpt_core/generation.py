"""Autoregressive generation: feed the model its own samples, one token at a time.

    sampling = SamplingConfig(max_new_tokens=100, temperature=0.8, top_k=50, seed=0)
    out = generate(model, idx, sampling)              # (B, T + new)
    for step in stream(model, idx, sampling):         # GenerationStep per new token
        step.tokens                                   # (B,)

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

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from gpt_core.config import ConfigError
from gpt_core.decode import DecodeStep, direct_attributes, has_hooks
from gpt_core.model import GPT
from gpt_core.sampling import sample_next


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SamplingConfig:
    """How to pick new tokens: how many, temperature (0 = greedy), top-k / top-p filters, a
    seed for a private generator (None: the global RNG) and the ids that end a row."""

    max_new_tokens: int = 200
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 0:
            raise ConfigError(
                f"max_new_tokens must be an integer >= 0, got {self.max_new_tokens!r}"
            )
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0 <= t < math.inf:
            raise ConfigError(
                f"temperature must be a finite number >= 0 (0 means greedy), got {t!r}"
            )
        object.__setattr__(self, "temperature", float(t))
        if self.top_k is not None and (not _is_int(self.top_k) or self.top_k < 1):
            raise ConfigError(f"top_k must be >= 1 (or None for no limit), got {self.top_k!r}")
        p = self.top_p
        if p is not None and (
            isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1
        ):
            raise ConfigError(f"top_p must be in (0, 1] (or None for no limit), got {p!r}")
        if self.seed is not None and not _is_int(self.seed):
            raise ConfigError(f"seed must be an integer or None, got {self.seed!r}")
        stops: object = self.stop_ids  # a list is accepted and stored as a tuple
        if isinstance(stops, str | bytes) or not isinstance(stops, Sequence):
            raise ConfigError(f"stop_ids must be a sequence of token ids, got {stops!r}")
        if not all(_is_int(i) and i >= 0 for i in stops):
            raise ConfigError(f"stop_ids must be token ids (integers >= 0), got {list(stops)!r}")
        object.__setattr__(self, "stop_ids", tuple(stops))


@dataclass(frozen=True)
class GenerationStep:
    """One step of generation: its index (0 = the first new token), the tokens (B,) and,
    when asked for (return_probs), probs (B, vocab_size), the distribution they were drawn
    from, and logits (B, vocab_size), the model's raw scores before temperature and filters."""

    index: int
    tokens: torch.Tensor
    probs: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def _decode(
    model: GPT, idx: torch.Tensor, s: SamplingConfig, use_cache: bool, return_probs: bool
) -> Iterator[GenerationStep]:
    """The decoding loop (runs in eval mode under inference_mode, see stream)."""
    if idx.dim() != 2 or idx.shape[1] == 0 or idx.dtype != torch.long:
        raise ConfigError(
            f"prompt must be a non-empty LongTensor (batch, time), got {idx.dtype} "
            f"of shape {tuple(idx.shape)}"
        )
    if s.max_new_tokens == 0:
        return
    window = model.config.max_seq_len
    B = idx.shape[0]
    prompt = idx[:, -window:]  # crop: only the most recent max_seq_len tokens are seen
    T0 = prompt.shape[1]
    # Every token of the visible sequence lives in one preallocated buffer: no per-step cat.
    seq = torch.empty(B, T0 + s.max_new_tokens, dtype=torch.long, device=idx.device)
    seq[:, :T0] = prompt
    generator = None
    if s.seed is not None:
        generator = torch.Generator(device=idx.device)
        generator.manual_seed(s.seed)
    stops = None
    if s.stop_ids:
        stops = torch.tensor(s.stop_ids, dtype=torch.long, device=idx.device)
        finished = torch.zeros(B, dtype=torch.bool, device=idx.device)
        fill = torch.zeros(B, dtype=torch.long, device=idx.device)  # each row's stop token

    cache = model.new_cache(B, min(window, T0 + s.max_new_tokens)) if use_cache else None
    # The lean one-token step, unless hooks (a tracer) want to see every module run.
    fast_step = DecodeStep(model) if use_cache and not has_hooks(model) else None
    n = T0  # tokens in seq so far
    logits = model(prompt, cache=cache, last_only=True)[0][:, -1]  # (B, V)
    for step in range(s.max_new_tokens):
        tokens, probs = sample_next(
            logits, s.temperature, s.top_k, s.top_p, generator, return_probs
        )
        if stops is not None:
            tokens = torch.where(finished, fill, tokens)  # finished rows repeat their stop
            hit = torch.isin(tokens, stops) & ~finished
            fill = torch.where(hit, tokens, fill)
            finished |= hit
        seq[:, n] = tokens
        n += 1
        yield GenerationStep(step, tokens, probs, logits if return_probs else None)
        if step == s.max_new_tokens - 1 or (stops is not None and bool(finished.all())):
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
    sampling: SamplingConfig,
    *,
    use_cache: bool = True,
    return_probs: bool = False,
) -> Iterator[GenerationStep]:
    """Continue each prompt of idx (B, T), yielding every new step as it is made; probs
    are filled in with return_probs. Eval mode while it runs; the model's mode is restored."""
    was_training = model.training
    model.eval()  # no dropout while sampling
    try:
        # direct_attributes: plain attribute reads in every forward while decoding
        with torch.inference_mode(), direct_attributes(model):
            yield from _decode(model, idx, sampling, use_cache, return_probs)
    finally:
        model.train(was_training)


def generate(
    model: GPT, idx: torch.Tensor, sampling: SamplingConfig, *, use_cache: bool = True
) -> torch.Tensor:
    """The prompts idx (B, T) followed by the generated tokens: (B, T + new), where new is
    max_new_tokens, or fewer when every row hit a stop id."""
    new = [step.tokens for step in stream(model, idx, sampling, use_cache=use_cache)]
    if not new:
        return idx.clone()
    return torch.cat([idx, torch.stack(new, dim=1)], dim=1)
