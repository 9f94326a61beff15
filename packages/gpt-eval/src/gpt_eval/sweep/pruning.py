"""Pruning a trial that runs in its own `train` process, through the trainer's on_step hook.

Every trial is a subprocess (its own log, its own crash, Ctrl-C saves a checkpoint), while
the optuna study lives in the sweep process. The study is an SQLite file in the sweep folder,
so the trial's process can open it too:

1. the sweep creates the trial (`study.ask`) and, when the file sets a pruner, starts `train`
   with TRIAL_ENV naming the study file, the study, the trial number and the pruner settings;
2. `train` (gpt_cli/train.py) installs `trial_hook`: at every eval step it reports the val
   loss with `trial.report(loss, step)` and asks `trial.should_prune()`, which runs the same
   pruner over the other trials' reported losses;
3. when the pruner says stop, the hook marks the trial (user attribute PRUNED_AT) and calls
   `trainer.request_stop()`: the trainer saves a checkpoint and `train` exits EXIT_INTERRUPTED;
4. the sweep reads the exit code and the mark, and tells the study the trial was PRUNED.

Only the sweep process finishes trials (`tell`); a trial's process only adds intermediate
values and its own mark, so the two never race on a trial's state, and SQLite's file lock
serialises their small writes (with a generous busy timeout for parallel trials).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import optuna

from gpt_eval.sweep.protocol import PRUNED_AT, TRIAL_ENV


class _HasValLoss(Protocol):
    @property
    def val_loss(self) -> float | None: ...


class StoppableTrainer(Protocol):
    """What the hook needs of gpt_train's Trainer: its state's val loss, and a stop."""

    @property
    def state(self) -> _HasValLoss: ...

    def request_stop(self) -> None: ...


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """The study's storage, waiting for SQLite's lock rather than failing when trials write."""
    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})


def make_pruner(settings: Mapping[str, int] | None) -> optuna.pruners.BasePruner:
    """A median pruner (stop a trial whose val loss at a step is worse than the median of the
    finished trials' at that step), or none."""
    if settings is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=settings["startup_trials"], n_warmup_steps=settings["warmup_steps"]
    )


class TrialReporter:
    """One running trial of a study, seen from the process that trains it."""

    def __init__(
        self, storage_url: str, study_name: str, number: int, pruner: Mapping[str, int] | None
    ) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(storage_url)
        study = optuna.load_study(
            study_name=study_name,
            storage=storage,
            sampler=optuna.samplers.RandomSampler(),  # never samples here: the sweep did
            pruner=make_pruner(pruner),
        )
        study_id = storage.get_study_id_from_name(study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        self.trial = optuna.trial.Trial(study, trial_id)

    def report(self, step: int, val_loss: float) -> bool:
        """Record the val loss at `step`; True when the pruner says the trial should stop."""
        with warnings.catch_warnings():
            # A resumed trial reaches again steps it reported before; optuna keeps the first.
            warnings.simplefilter("ignore")
            self.trial.report(val_loss, step)
        if not self.trial.should_prune():
            return False
        self.trial.set_user_attr(PRUNED_AT, step)
        return True


def trial_from_env(environ: Mapping[str, str] | None = None) -> TrialReporter | None:
    """The reporter for the sweep trial this process runs, or None outside a sweep."""
    env = os.environ if environ is None else environ
    raw = env.get(TRIAL_ENV)
    if not raw or int(env.get("RANK", "0")) != 0:  # under torchrun, rank 0 speaks for all
        return None
    info: dict[str, Any] = json.loads(raw)
    return TrialReporter(info["storage"], info["study"], int(info["trial"]), info.get("pruner"))


StepHook = Callable[[int, StoppableTrainer], None]


def trial_hook(eval_interval: int, max_steps: int) -> StepHook | None:
    """The trainer's on_step hook for a trial started by a sweep (None outside a sweep).

    At each eval step (every eval_interval steps, and the last) it reports the val loss and
    stops the trainer, which saves a checkpoint, if the pruner says so.
    """
    reporter = trial_from_env()
    if reporter is None:
        return None

    def on_step(step: int, trainer: StoppableTrainer) -> None:
        at_eval = step % eval_interval == 0 or step == max_steps
        loss = trainer.state.val_loss
        if at_eval and loss is not None and reporter.report(step, loss):
            print(f"pruned at step {step}: val loss {loss:.4f} is worse than the median trial's")
            trainer.request_stop()

    return on_step
