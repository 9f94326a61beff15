"""Learning-rate schedules: a function of the step alone, so resume needs no scheduler state."""

from __future__ import annotations

import math


def lr_at(
    step: int,
    lr: float,
    min_lr: float,
    warmup_steps: int,
    total_steps: int,
    schedule: str = "cosine",
    decay_fraction: float = 0.2,
) -> float:
    """The learning rate for optimizer step `step` (0-based).

    All schedules warm up linearly from lr/warmup to lr over `warmup_steps`. Then:
    cosine    decays along half a cosine to `min_lr` at `total_steps` (and stays there);
    wsd       (warmup-stable-decay) holds lr, then decays linearly to `min_lr` over the
              last `decay_fraction` of the steps; a run can be extended before the decay;
    constant  holds lr.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return lr
    if step >= total_steps:
        return min_lr
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        progress = (step - warmup_steps) / span
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    if schedule == "wsd":
        decay_start = max(warmup_steps, int(total_steps * (1.0 - decay_fraction)))
        if step < decay_start:
            return lr
        progress = (step - decay_start) / max(1, total_steps - decay_start)
        return lr + (min_lr - lr) * progress
    raise ValueError(f"unknown schedule {schedule!r}")
