"""Running a sweep: ask the study for trials, run them N at a time, tell it how they ended.

All optuna calls happen in this (main) thread; worker threads only wait on subprocesses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from gpt_tokenizers.atomic import atomic_path, write_text_atomic
from optuna.trial import TrialState
from tqdm import tqdm

from gpt_eval.errors import EvalError
from gpt_eval.sweep.protocol import PRUNED_AT
from gpt_eval.sweep.report import (
    best_config_yaml,
    plot_metric_vs_keys,
    results_markdown,
    results_table,
    trial_name,
)
from gpt_eval.sweep.spec import SweepSpec, check_trial, check_trials, format_value, trial_budget
from gpt_eval.sweep.study import (
    STUDY_NAME,
    TrialQueue,
    counted,
    enqueue_retries,
    open_study,
    storage_url,
    suggest,
)
from gpt_eval.sweep.trials import Job, Outcome, TrialRunner


@dataclass
class SweepResult:
    """What a sweep produced: the sorted table, the best trial's record and the files written."""

    table: pd.DataFrame
    best: dict[str, Any] | None
    files: list[Path]


def _trial_env(workers: int) -> dict[str, str]:
    env = dict(os.environ)
    if workers > 1 and "OMP_NUM_THREADS" not in env:
        # Share the cores between trials instead of oversubscribing them.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    return env


class _Sweep:
    """One run of a sweep command: the study, the trial queue, the runner and the log."""

    def __init__(
        self,
        spec: SweepSpec,
        out: Path,
        runner: TrialRunner,
        study: optuna.Study,
        queue: TrialQueue,
        say: Callable[[str], None],
        bar: tqdm[Any],
    ) -> None:
        self.spec, self.out, self.runner = spec, out, runner
        self.study, self.queue, self.say, self.bar = study, queue, say, bar
        self.done = int(bar.n)  # trials finished, for [done/total] (a hidden bar counts nothing)

    def next_job(self) -> Job | None:
        """The next trial to start (an invalid drawn one is recorded as failed and skipped)."""
        while True:
            trial = self.queue.resumed()
            resume = trial is not None
            trial = trial or self.queue.new()
            if trial is None:
                return None
            overrides = suggest(trial, self.spec)
            folder = self.out / trial_name(trial.number)
            trial.set_user_attr("run_dir", str(folder / "run"))
            job = Job(trial, trial_name(trial.number), folder, overrides, resume)
            if resume:
                job.prior_wall_s = float(trial.user_attrs.get("wall_time_s", 0.0))
            try:
                check_trial(self.spec, overrides)
            except EvalError as exc:
                self.finish(job, Outcome("failed", error=str(exc)))
                continue
            return job

    def finish(self, job: Job, outcome: Outcome) -> None:
        """Tell the study how a trial ended, and log it."""
        trial, wall = job.trial, round(job.prior_wall_s + outcome.wall_time_s, 3)
        trial.set_user_attr("wall_time_s", wall)
        for key, value in outcome.metrics.items():
            trial.set_user_attr(key, value)
        metric = {**outcome.metrics, "wall_time_s": wall}.get(self.spec.metric)
        if outcome.kind == "interrupted":
            # Read from the study, not trial.user_attrs: that is a copy from when it started.
            fresh = next(
                t for t in self.study.get_trials(deepcopy=False) if t.number == trial.number
            )
            pruned_at = fresh.user_attrs.get(PRUNED_AT)
            if pruned_at is None:  # stays RUNNING: the next run continues it
                self._log(job, f"INTERRUPTED: checkpoint saved, a rerun continues it ({wall:.1f}s)")
                return
            trial.set_user_attr("error", f"pruned at step {pruned_at}")
            self.study.tell(trial, state=TrialState.PRUNED)
            text = f"PRUNED at step {pruned_at}"
        elif outcome.kind == "finished" and metric is not None and math.isfinite(metric):
            self.study.tell(trial, metric)
            text = f"{self.spec.metric}={metric:.4g}"
        else:
            error = outcome.error or f"finished without a value for {self.spec.metric}"
            trial.set_user_attr("error", error)
            self.study.tell(trial, state=TrialState.FAIL)
            text = f"FAILED: {error}"
        self.done += 1
        self.bar.update(1)
        self._log(job, f"{text} ({wall:.1f}s)")

    def _log(self, job: Job, text: str) -> None:
        values = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={format_value(v)}"
            for k, v in job.overrides.items()
            if k in self.spec.swept_keys
        )
        self.say(f"[{self.done}/{self.bar.total}] {job.name} {values}: {text}")

    def run(self, workers: int) -> None:
        """Run trials until the budget is used, `workers` at a time."""
        done_ok = any(t.state == TrialState.COMPLETE for t in self.study.get_trials(deepcopy=False))
        # The first trial runs alone so that one-time setup the trials share (preparing the
        # data set, downloads) happens once instead of racing in parallel.
        limit = 1 if workers > 1 and not done_ok else workers
        running: dict[Future[Outcome], Job] = {}
        exhausted = False
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                while True:
                    while len(running) < limit and not exhausted:
                        job = self.next_job()
                        if job is None:
                            exhausted = True
                        else:
                            running[pool.submit(self.runner.run, job)] = job
                    if not running:
                        return
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        self.finish(running.pop(fut), fut.result())
                    limit = workers
            except KeyboardInterrupt:
                self.runner.stop_all()
                for fut, job in running.items():  # record what each stopped trial reached
                    self.finish(job, fut.result())
                raise


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    command: Sequence[str],
    *,
    max_trials: int | None = None,
    parallel: int | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run (or resume) a sweep and write results.csv, results.md, the plot and best_config.yaml.

    `command` starts the train CLI; each trial appends `--config BASE --run-dir DIR
    [--resume] --set k=v ...` (see gpt_eval.sweep.protocol). Every trial's values are checked
    with load_config before anything runs. `log` gets one line per trial (default: printed
    above the progress bar).
    """
    workers = parallel if parallel is not None else spec.parallel
    if workers < 1:
        raise EvalError(f"--parallel must be at least 1, got {workers}")
    check_trials(spec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study, storage = open_study(spec, out)
    retries = enqueue_retries(study) if retry_failed else 0
    budget = trial_budget(spec, max_trials)
    queue = TrialQueue(study, storage, spec, budget)
    finished = counted(study) - len(queue.stale)
    to_run = len(queue.stale) + max(0, budget - counted(study)) + retries
    say = log if log is not None else tqdm.write
    if finished or queue.stale:
        say(f"resuming {out}: {finished} trial(s) already finished, {to_run} to run")
    say(f"sweep: {to_run} trial(s) to run, {workers} at a time, results in {out}")
    runner = TrialRunner(
        spec,
        command,
        {"storage": storage_url(out), "study": STUDY_NAME, "pruner": spec.pruner},
        _trial_env(workers),
    )
    bar = tqdm(
        total=finished + to_run,
        initial=finished,
        desc="sweep",
        unit="trial",
        disable=None if progress else True,
    )
    try:
        _Sweep(spec, out, runner, study, queue, say, bar).run(workers)
    finally:
        bar.close()
    return write_results(spec, study, out)


def write_results(spec: SweepSpec, study: optuna.Study, out: Path) -> SweepResult:
    """results.csv, results.md, <metric>_vs_keys.png and best_config.yaml from the study."""
    table = results_table(spec, study)
    files = [out / "results.csv", out / "results.md"]
    with atomic_path(files[0]) as tmp:
        table.to_csv(tmp, index=False)
    write_text_atomic(files[1], results_markdown(spec, table))
    plot = plot_metric_vs_keys(table, spec, out / f"{spec.metric}_vs_keys.png")
    if plot is not None:
        files.append(plot)
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return SweepResult(table, None, files)
    row = ok.iloc[0]
    number = int(str(row["trial"]).removeprefix("trial-"))
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    overrides = {**spec.fixed, **frozen.params}
    best = {
        **frozen.user_attrs,
        "trial": row["trial"],
        "overrides": overrides,
        spec.metric: float(row[spec.metric]),
    }
    config_path = out / "best_config.yaml"
    text = best_config_yaml(spec, best["trial"], best[spec.metric], overrides)
    write_text_atomic(config_path, text)
    files.append(config_path)
    return SweepResult(table, best, files)
