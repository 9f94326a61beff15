"""How many CPU threads torch uses: `train.threads` / `--threads N` on train, sample, evaluate.

torch starts one thread per core. On a machine whose cores are busy with other work those
threads wait on each other and throughput collapses; one or two threads are then faster.
"""

from __future__ import annotations

import contextlib

import torch

from gpt_train.errors import TrainError


def set_threads(n: int | None) -> None:
    """Use `n` threads for torch's CPU ops (intra-op) and, when still possible, for its
    inter-op pool too; None leaves torch's default."""
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise TrainError(f"threads must be an integer >= 1 (--threads N, train.threads), got {n!r}")
    torch.set_num_threads(n)
    # The inter-op pool can be sized only before its first use in this process (and only
    # once): afterwards torch raises, and the intra-op setting above is what matters.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(n)
