"""Random training windows from memory-mapped token files, reproducible and shardable.

Every optimizer step draws the same global set of window offsets on every rank, from a
generator seeded by (seed, split, step); each rank then keeps its share (a slice of the
accumulation steps, or of each micro-batch). So:
- the global batch is identical whatever the number of processes (DDP == single process),
- the sampler's whole state is its step counter: saving it makes resume exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gpt_train.errors import TrainError

SPLIT_IDS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class Shard:
    """How one rank's part of the global batch is laid out."""

    micro_steps: int  # forward/backward passes per optimizer step on this rank
    micro_batch: int  # sequences per pass on this rank


def plan_shard(batch_size: int, grad_accum: int, world_size: int) -> Shard:
    """Split a global batch of batch_size * grad_accum sequences across `world_size` ranks.

    Accumulation steps are divided first (keeping the micro-batch, so memory per GPU stays
    what the config asked for); failing that, the micro-batch is divided.
    """
    if grad_accum % world_size == 0:
        return Shard(grad_accum // world_size, batch_size)
    if batch_size % world_size == 0:
        return Shard(grad_accum, batch_size // world_size)
    raise TrainError(
        f"cannot split the global batch (train.batch_size = {batch_size}, train.grad_accum = "
        f"{grad_accum}) across {world_size} processes: one of them must be divisible by "
        f"{world_size}"
    )


class BatchSampler:
    """Yields this rank's micro-batches (x, y) of one optimizer step at a time.

    `tokens` is a split's flat id array (`Dataset.tokens(split)`); every other argument is
    a keyword, named as in the config (train.batch_size, train.grad_accum, train.seed).
    """

    def __init__(
        self,
        tokens: np.ndarray[Any, np.dtype[Any]],
        *,
        seq_len: int,
        batch_size: int,
        grad_accum: int = 1,
        seed: int = 0,
        split: str = "train",
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        if len(tokens) < seq_len + 2:
            raise TrainError(
                f"the {split} split has {len(tokens)} tokens, fewer than one window of "
                f"max_seq_len + 1 = {seq_len + 1}; use more text or a shorter model.max_seq_len"
            )
        self.tokens = tokens
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.seed = seed
        self.split = split
        self.rank = rank
        self.world_size = world_size
        self.shard = plan_shard(batch_size, grad_accum, world_size)
        self.device = torch.device(device)
        self.pin = self.device.type == "cuda"
        self.step = 0  # the next optimizer step to draw

    def global_offsets(self, step: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Window starts of the whole global batch of `step`, shape (grad_accum, batch_size)."""
        rng = np.random.default_rng([self.seed, SPLIT_IDS.get(self.split, 2), step])
        high = len(self.tokens) - self.seq_len - 1  # last start with a full (x, y) window
        return rng.integers(0, high + 1, size=(self.grad_accum, self.batch_size), dtype=np.int64)

    def local_offsets(self, step: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        """This rank's share, shape (micro_steps, micro_batch)."""
        offsets = self.global_offsets(step)
        s = self.shard
        if s.micro_steps != self.grad_accum:  # ranks split the accumulation steps
            return offsets[self.rank * s.micro_steps : (self.rank + 1) * s.micro_steps]
        return offsets[:, self.rank * s.micro_batch : (self.rank + 1) * s.micro_batch]

    def windows(self, starts: np.ndarray[Any, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-token targets for window starts: two LongTensors (B, T)."""
        T = self.seq_len
        buf = np.stack([np.asarray(self.tokens[s : s + T + 1], dtype=np.int64) for s in starts])
        xy = torch.from_numpy(buf)  # (B, T + 1)
        if self.pin:
            xy = xy.pin_memory()
        xy = xy.to(self.device, non_blocking=self.pin)
        return xy[:, :-1], xy[:, 1:]

    def next(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The micro-batches of the next optimizer step (advances the state)."""
        batches = [self.windows(row) for row in self.local_offsets(self.step)]
        self.step += 1
        return batches

    def eval_batches(self, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A fixed set of `count` batches (the same at every evaluation), this rank's share."""
        rng = np.random.default_rng([self.seed, 99, SPLIT_IDS.get(self.split, 2)])
        high = len(self.tokens) - self.seq_len - 1
        starts = rng.integers(0, high + 1, size=(count, self.batch_size), dtype=np.int64)
        return [self.windows(starts[i]) for i in range(self.rank, count, self.world_size)]

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "seed": self.seed, "split": self.split}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["seed"]) != self.seed:
            raise TrainError(
                f"the checkpoint's data seed {state['seed']} differs from train.seed = "
                f"{self.seed}; resume with the seed the run started with"
            )
        self.step = int(state["step"])
