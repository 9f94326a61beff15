"""What the training loop keeps on the device between the steps it reads: the last loss and
gradient norm, the first non-finite loss, and the throughput window.

Reading a CUDA tensor on the host (`float(t)`, `.item()`) waits for every queued kernel, so
a loop that does it each step leaves the GPU idle while Python prepares the next one. The
loop therefore only `record`s tensors on ordinary steps, and `flush`es them at its sync
steps (log, eval, checkpoint and sample steps, and the last one): one host read there. A
non-finite loss is not missed in between: `record` notes the first step whose loss was NaN
or inf with device-side ops (no read), and `flush` reports it with that step's number, so
the run stops before anything is saved from weights it produced (the checkpointer also
refuses non-finite weights itself).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gpt_train import distributed
from gpt_train.config import LogSection
from gpt_train.distributed import DistInfo

NO_STEP = torch.iinfo(torch.int64).max  # "no non-finite loss yet" (the minimum over ranks)


@dataclass(frozen=True)
class Due:
    """What a finished step does besides training, from the log section's intervals."""

    evaluate: bool
    log: bool  # a metrics.csv row
    save: bool  # a checkpoint
    sample: bool

    @property
    def sync(self) -> bool:
        """Whether the step reads the device (`StepWindow.flush`): all but ordinary steps."""
        return self.log or self.save or self.sample


def due(step: int, log: LogSection, max_steps: int) -> Due:
    """Every eval_interval-th step evaluates (and logs), every log_interval-th logs, every
    checkpoint_interval-th saves; the last step does all three."""
    last = step == max_steps
    evaluate = step % log.eval_interval == 0 or last
    return Due(
        evaluate=evaluate,
        log=evaluate or step % log.log_interval == 0,
        save=step % log.checkpoint_interval == 0 or last,
        sample=bool(log.sample_interval) and step % log.sample_interval == 0,
    )


@dataclass(frozen=True)
class Flushed:
    """The figures of the latest step, read on the host; `bad_step` is the first step since the
    previous flush whose loss was non-finite on any rank (None: none was)."""

    loss: float
    grad_norm: float
    bad_step: int | None
    bad_loss: float


class StepWindow:
    """Device-side figures of the steps since the last flush, and tokens/seconds since the last
    metrics row (`take_throughput`). One per training loop."""

    def __init__(self, device: str, info: DistInfo) -> None:
        self.info = info
        self.device = device
        self.loss = torch.zeros((), device=device)
        self.grad_norm = torch.zeros((), device=device)
        self._reset_bad()
        self.tokens = 0.0
        self.seconds = 0.0
        self.start = time.perf_counter()
        self.pending = False  # steps recorded since the last flush

    def begin(self) -> None:
        """A step starts: the first one after a flush restarts the clock, so what the loop did
        at the sync step (evaluation, saves, samples) does not count as training time."""
        if not self.pending:
            self.start = time.perf_counter()

    def _reset_bad(self) -> None:
        self.bad_step = torch.full((), NO_STEP, dtype=torch.int64, device=self.device)
        self.bad_loss = torch.zeros((), device=self.device)

    def record(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor, tokens: int) -> None:
        """Keep step `step`'s (local, detached) loss and gradient norm; no host read."""
        self.loss, self.grad_norm = loss, grad_norm
        first = ~torch.isfinite(loss) & (self.bad_step == NO_STEP)
        self.bad_step = torch.where(first, step, self.bad_step)
        self.bad_loss = torch.where(first, loss.float(), self.bad_loss)
        self.tokens += tokens
        self.pending = True

    def flush(self) -> Flushed:
        """Read the figures (waits for the queued work, so the time up to here is honest); the
        loss is the mean over ranks, as every rank must see the same figures and stop alike."""
        loss = distributed.mean_across(self.loss.float(), self.info)
        bad_step = self.bad_step
        if self.info.enabled:  # the first bad step on any rank (its loss: averaged below)
            bad_step = bad_step.clone()
            dist.all_reduce(bad_step, op=dist.ReduceOp.MIN)
        bad_loss = torch.where(self.bad_step == bad_step, self.bad_loss, 0.0)
        bad_loss = distributed.mean_across(bad_loss, self.info)  # a non-finite stays one
        values = torch.stack([loss, self.grad_norm.float(), bad_loss]).tolist()
        first = int(bad_step)
        self.seconds += time.perf_counter() - self.start
        self.pending = False
        self._reset_bad()
        return Flushed(values[0], values[1], None if first == NO_STEP else first, values[2])

    def take_throughput(self) -> float:
        """Tokens per second of training since the last call (the metrics row's window)."""
        tok_s = self.tokens / max(self.seconds, 1e-9)
        self.tokens, self.seconds = 0.0, 0.0
        return tok_s
