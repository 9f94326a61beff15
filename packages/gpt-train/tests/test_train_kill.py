"""Fault injection: SIGKILL a training process at random moments among its checkpoint saves,
resume each time, and check that nothing is lost."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_train.config import load_config
from gpt_train.metrics import read_metrics
from gpt_train.runs import load_run

MAX_STEPS = 150
# Starting Python and torch takes seconds, so a parent process imports them once and forks
# one training process per request (it runs no torch op itself, so forking is safe). It
# answers each "go" line with the child's pid, then with its exit status once it is gone.
ZYGOTE = """\
import os, sys, traceback
import torch._dynamo  # torch.optim imports it on first use, which takes seconds
from gpt_train.config import load_config
from gpt_train.trainer import train
cfg = load_config(sys.argv[1])
for n, line in enumerate(sys.stdin):
    pid = os.fork()
    if pid == 0:
        import torch
        torch.set_num_threads(1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(os.open(f"{sys.argv[2]}.err{n}", os.O_WRONLY | os.O_CREAT), 2)
        try:
            train(cfg, sys.argv[2], resume=True)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    print(pid, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


def _latest_step(run: Path) -> int:
    loaded = load_run(run)  # what `sample --run` opens
    x = torch.zeros((1, 4), dtype=torch.long)
    logits, _ = loaded.model(x)
    assert torch.isfinite(logits).all()
    return loaded.step


def _write_config(tmp_path: Path, data_dir: Path) -> Path:
    """A tiny run that checkpoints every step and keeps 2, on a small prepared corpus."""
    values: dict[str, Any] = {
        "model": {"max_seq_len": 16, "d_model": 16, "n_layers": 1, "n_heads": 2},
        "data": {"dir": str(data_dir)},
        "optim": {"lr": 3e-3, "warmup_steps": 1},
        "train": {"max_steps": MAX_STEPS, "batch_size": 2, "device": "cpu"},
        "log": {"log_interval": 1, "eval_interval": 5, "eval_batches": 1, "sample_interval": 0,
                "checkpoint_interval": 1, "keep_last": 2, "progress": False},
    }  # fmt: skip
    path = tmp_path / "kill.yaml"
    load_config(values=values).save(path)
    return path


def _start(zygote: subprocess.Popen[str]) -> int:
    """Fork one training process (resuming the run); its pid."""
    assert zygote.stdin is not None
    zygote.stdin.write("go\n")
    zygote.stdin.flush()
    return _read_int(zygote)


def _read_int(zygote: subprocess.Popen[str]) -> int:
    assert zygote.stdout is not None
    return int(zygote.stdout.readline())


@pytest.mark.slow
def test_sigkill_around_checkpoint_saves_loses_nothing(
    tmp_path: Path, prepared_prefix: Callable[[int], Path]
) -> None:
    cfg_path = _write_config(tmp_path, prepared_prefix(20_000))
    script, run = tmp_path / "zygote.py", tmp_path / "run"
    script.write_text(ZYGOTE)
    metrics = run / "metrics.csv"
    zygote = subprocess.Popen(
        [sys.executable, str(script), str(cfg_path), str(run)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    rng = random.Random(11)
    steps_seen, codes = [0], list[int]()
    try:
        for n in range(5):
            rows_before = len(read_metrics(metrics)) if metrics.is_file() else 0
            pid = _start(zygote)
            deadline = time.monotonic() + 20
            # wait until this process is training (a new metrics row), then kill it at random
            while time.monotonic() < deadline:
                if metrics.is_file() and len(read_metrics(metrics)) > rows_before:
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.3))
            with contextlib.suppress(ProcessLookupError):  # it may have finished already
                os.kill(pid, signal.SIGKILL)
            codes.append(_read_int(zygote))
            err = Path(f"{run}.err{n}").read_text()
            assert codes[-1] in (0, -signal.SIGKILL), err[-2000:]
            assert "Traceback" not in err, err[-2000:]
            steps_seen.append(_latest_step(run))
            assert steps_seen[-1] >= steps_seen[-2]  # steps only move forward
            if codes[-1] == 0:
                break
        _start(zygote)  # and now to the end
        codes.append(_read_int(zygote))
    finally:
        assert zygote.stdin is not None
        zygote.stdin.close()
        zygote.wait(timeout=30)
    assert codes.count(-signal.SIGKILL) >= 3, codes  # most runs were killed midway
    assert codes[-1] == 0, Path(f"{run}.err{len(codes) - 1}").read_text()[-2000:]
    assert _latest_step(run) == MAX_STEPS
    assert steps_seen[-1] > 0  # some kills came after saves, not all before the first
    steps = [int(r["step"]) for r in read_metrics(metrics)]
    assert steps == list(range(1, MAX_STEPS + 1))  # no gaps, no step twice
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["best", f"step-{MAX_STEPS - 1:07d}", f"step-{MAX_STEPS:07d}"]
