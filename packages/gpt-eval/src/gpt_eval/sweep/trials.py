"""Running one trial: the trial command as a subprocess, and what its exit code means.

Trials start in their own session, so a Ctrl-C in the terminal reaches only the sweep, which
then sends each running trial exactly one SIGINT: `train` saves a checkpoint and exits
EXIT_INTERRUPTED, and the next run of the sweep continues it with `--resume`.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from gpt_train.checkpoint import latest_checkpoint

from gpt_eval.errors import EvalError
from gpt_eval.plots import load_metrics
from gpt_eval.sweep.protocol import EXIT_INTERRUPTED, TRIAL_ENV
from gpt_eval.sweep.spec import SweepSpec, override_args

STOP_GRACE_S = 120.0  # how long a stopped trial may take to save its checkpoint


@dataclass
class Job:
    """A trial about to run: its optuna trial, folder and overrides."""

    trial: optuna.Trial
    name: str
    folder: Path
    overrides: dict[str, Any]
    resume: bool = False  # continue the checkpoint an interrupted sweep left
    prior_wall_s: float = 0.0  # time spent in earlier, interrupted attempts


@dataclass
class Outcome:
    """How a trial's process ended: finished, interrupted (checkpoint saved) or failed."""

    kind: str
    wall_time_s: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def summarize_run(run_dir: Path) -> dict[str, Any]:
    """Final and best validation loss, final train loss, median tokens/s and steps of a run."""
    frame = load_metrics(run_dir / "metrics.csv")
    val = frame["val_loss"].dropna()
    train = frame["train_loss"].dropna()
    speed = frame["tokens_per_sec"].dropna()
    return {
        "final_val_loss": float(val.iloc[-1]) if len(val) else None,
        "best_val_loss": float(val.min()) if len(val) else None,
        "final_train_loss": float(train.iloc[-1]) if len(train) else None,
        "tokens_per_sec": float(speed.median()) if len(speed) else None,
        "steps": int(frame["step"].iloc[-1]),
    }


def _error_line(log: str, returncode: int) -> str:
    """The most telling line of a failed trial's log: its `error:` line, or the last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.lower().startswith("error")]
    last = errors[-1] if errors else (lines[-1] if lines else "no output")
    return f"{last} (exit code {returncode})"


class TrialRunner:
    """Runs trials as subprocesses and remembers them, so that Ctrl-C can stop them all."""

    def __init__(
        self,
        spec: SweepSpec,
        command: Sequence[str],
        study: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.command = list(command)
        self.study = dict(study)  # storage URL, study name and pruner, for TRIAL_ENV
        self.env = dict(env or {})
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def argv(self, job: Job) -> list[str]:
        run_dir = job.folder / "run"
        argv = [*self.command, "--config", str(self.spec.base), "--run-dir", str(run_dir)]
        if job.resume:
            argv.append("--resume")
        for item in override_args(job.overrides):
            argv += ["--set", item]
        return argv + self.spec.train_args

    def run(self, job: Job) -> Outcome:
        """Run one trial to its end (called from a worker thread; touches no optuna state)."""
        run_dir = job.folder / "run"
        if job.resume and latest_checkpoint(run_dir / "checkpoints") is None:
            # Stopped before its first checkpoint (killed while preparing its data, or
            # aborted): `train --resume` would refuse the folder, so the trial starts again.
            job.resume = False
        if run_dir.exists() and not job.resume:
            shutil.rmtree(run_dir)  # a folder left by some earlier sweep: start afresh
        job.folder.mkdir(parents=True, exist_ok=True)
        argv = self.argv(job)
        env = dict(self.env)
        if self.study.get("pruner") is not None:  # only a pruned sweep needs train to report
            env[TRIAL_ENV] = json.dumps({**self.study, "trial": job.trial.number})
        log_path = job.folder / "train.log"
        start = time.perf_counter()
        with log_path.open("ab" if job.resume else "wb") as log:
            with self._lock:
                if self.stopping:
                    return Outcome("interrupted")
                try:
                    proc = subprocess.Popen(
                        argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                    )
                except OSError as exc:
                    return Outcome("failed", error=f"cannot start {argv[0]}: {exc}")
                self._procs.add(proc)
            returncode = proc.wait()
            with self._lock:
                self._procs.discard(proc)
        wall = round(time.perf_counter() - start, 3)
        if returncode == 0:
            try:
                return Outcome("finished", wall, summarize_run(run_dir))
            except EvalError as exc:
                return Outcome("failed", wall, error=f"trial finished but {exc}")
        if returncode in (EXIT_INTERRUPTED, 130, -signal.SIGINT) or self.stopping:
            try:
                metrics = summarize_run(run_dir)  # what it reached, for a pruned trial
            except EvalError:
                metrics = {}
            return Outcome("interrupted", wall, metrics, f"interrupted (exit code {returncode})")
        if returncode < 0:
            return Outcome("failed", wall, error=f"killed by signal {-returncode}")
        text = log_path.read_text(encoding="utf-8", errors="replace")
        return Outcome("failed", wall, error=_error_line(text, returncode))

    def stop_all(self) -> None:
        """Ask every running trial to save and stop (one SIGINT each); kill the stragglers."""
        with self._lock:
            self.stopping = True
            procs = list(self._procs)
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        try:
            for proc in procs:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except (subprocess.TimeoutExpired, KeyboardInterrupt):  # slow, or a second Ctrl-C
            for proc in procs:
                proc.kill()
