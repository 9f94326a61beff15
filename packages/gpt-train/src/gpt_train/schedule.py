"""Learning-rate schedules: a function of the step alone, so resume needs no scheduler state."""

from __future__ import annotations

import math

from gpt_train.config import OptimSection


def lr_at(step: int, optim: OptimSection, max_steps: int) -> float:
    """The learning rate for optimizer step `step` (0-based) under the `optim` section.

    All schedules warm up linearly from lr/warmup to lr over `warmup_steps`. The horizon is
    `decay_steps`, or `max_steps` when that is empty. Then:
    cosine    decays along half a cosine to `min_lr` at the horizon (and stays there);
    wsd       (warmup-stable-decay) holds lr, then decays linearly to `min_lr` over the
              last `decay_fraction` of the steps; a run can be extended before the decay;
    constant  holds lr.
    """
    lr, min_lr, warmup = optim.lr, optim.min_lr, optim.warmup_steps
    total = optim.decay_steps or max_steps
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if optim.schedule == "constant":
        return lr
    if step >= total:
        return min_lr
    if optim.schedule == "cosine":
        progress = (step - warmup) / max(1, total - warmup)
        return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    # wsd
    decay_start = max(warmup, int(total * (1.0 - optim.decay_fraction)))
    if step < decay_start:
        return lr
    progress = (step - decay_start) / max(1, total - decay_start)
    return lr + (min_lr - lr) * progress
