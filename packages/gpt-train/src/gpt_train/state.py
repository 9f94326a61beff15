"""TrainState: how far a run has got, everything about it that is not a tensor of the model;
TrainResult: how a call to `train` ended.

The checkpointer saves it beside the weights, optimizer, scaler and sampler; resuming
restores it, so the loop carries on from exactly where it stopped. The random generators
are part of it: dropout masks after a resume are the ones a straight run would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from gpt_train.distributed import DistInfo

RngStates = dict[str, list[Any]]  # {"cpu": [per rank], "cuda": [per rank or None]}


@dataclass
class TrainState:
    """A run's progress; `step` counts finished optimizer steps."""

    step: int = 0
    tokens_seen: int = 0  # training tokens consumed by those steps (all ranks together)
    best_val_loss: float | None = None  # the lowest val loss so far (kept in best/)
    elapsed_s: float = 0.0  # wall time of every session, up to the last save
    train_loss: float | None = None  # of the last step
    val_loss: float | None = None  # of the last evaluation
    rng: RngStates | None = None  # every rank's generator states at the last save

    def result(self, run_dir: Path, status: str, elapsed_s: float) -> TrainResult:
        """How the run ended, as `train` returns it."""
        return TrainResult(
            run_dir=run_dir,
            step=self.step,
            status=status,
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            best_val_loss=self.best_val_loss,
            elapsed_s=elapsed_s,
        )


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    """How a call to `train` ended."""

    run_dir: Path
    step: int
    status: str  # finished | interrupted | already finished
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    elapsed_s: float


def capture_rng(info: DistInfo) -> RngStates:
    """The torch generator states of every rank (a collective: all ranks must call)."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state() if info.device.startswith("cuda") else None
    if info.enabled:
        gathered: list[Any] = [None] * info.world_size
        dist.all_gather_object(gathered, (cpu, cuda))
        return {"cpu": [g[0] for g in gathered], "cuda": [g[1] for g in gathered]}
    return {"cpu": [cpu], "cuda": [cuda]}


def restore_rng(rng: RngStates, info: DistInfo, reseed: int) -> None:
    """Put this rank's generators back; with another number of processes, seed `reseed`."""
    r = info.rank
    if len(rng["cpu"]) == info.world_size:
        torch.set_rng_state(rng["cpu"][r])
        if info.device.startswith("cuda") and rng["cuda"][r] is not None:
            torch.cuda.set_rng_state(rng["cuda"][r])
    else:  # a different number of processes: reseed deterministically instead
        torch.manual_seed(reseed + r)
