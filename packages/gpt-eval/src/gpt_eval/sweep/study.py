"""The sweep's optuna study: an SQLite file in the sweep folder, so a rerun continues it.

Samplers: `grid` is optuna's GridSampler (every combination once, in a seeded shuffled
order); `random` and `tpe` draw the `random` keys, and visit the grid points (if any) in
order, `samples` times each, by enqueuing them. Trials left RUNNING by an interrupted sweep
are continued in place (same number, same values, `train --resume`); `--retry-failed` enqueues
a failed trial's values again, and the new trial replaces the old one in the results.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from gpt_eval.errors import EvalError
from gpt_eval.sweep.pruning import make_pruner, open_storage
from gpt_eval.sweep.spec import SweepSpec, grid_points

STUDY_NAME = "sweep"
STUDY_FILE = "study.db"
TPE_STARTUP_TRIALS = 5  # TPE draws at random until this many trials have finished
POINT = "grid_point"  # user attribute: index of an enqueued grid point
RETRY_OF = "retry_of"  # user attribute: number of the failed trial a retry replaces
SPEC = "spec"  # study user attribute: SweepSpec.identity() of the sweep that made the study


class _GridSampler(optuna.samplers.GridSampler):
    """GridSampler without its stop at the end of the grid.

    Its after_trial calls study.stop(), which raises outside study.optimize; the sweep runs
    ask/tell itself and stops at trial_budget (never more trials than grid points).
    """

    def after_trial(self, *args: Any, **kwargs: Any) -> None:
        return None


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / STUDY_FILE).resolve()}"


def make_sampler(spec: SweepSpec, offset: int) -> optuna.samplers.BaseSampler:
    """The file's sampler. Random draws are seeded by seed + trials so far, so a resumed
    sweep does not repeat its first draws (the grid order must not move: seed alone)."""
    if spec.sampler == "grid":
        return _GridSampler(spec.grid, seed=spec.seed)
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(
            seed=spec.seed + offset, n_startup_trials=TPE_STARTUP_TRIALS
        )
    return optuna.samplers.RandomSampler(seed=spec.seed + offset)


def open_study(spec: SweepSpec, out: Path) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    """Create the sweep's study in `out`, or load it; refuse a folder holding another sweep.

    Returns the study and its storage (which finds a trial's id from its number).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(storage_url(out))
    identity = json.loads(json.dumps(spec.identity()))
    offset = 0
    try:
        study_id = storage.get_study_id_from_name(STUDY_NAME)
    except KeyError:
        study_id = None
    if study_id is not None:
        stored = storage.get_study_user_attrs(study_id).get(SPEC)
        if stored != identity:
            changed = sorted(k for k in identity if (stored or {}).get(k) != identity[k])
            raise EvalError(
                f"{out} holds a different sweep (its {', '.join(changed)} differ from "
                f"{spec.path}); use another --out folder or delete it"
            )
        offset = len(storage.get_all_trials(study_id, deepcopy=False))
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        load_if_exists=True,
        direction="minimize" if spec.minimize else "maximize",
        sampler=make_sampler(spec, offset),
        pruner=make_pruner(spec.pruner),
    )
    if study_id is None:
        study.set_user_attr(SPEC, identity)
    return study, storage


def suggest(trial: optuna.Trial, spec: SweepSpec) -> dict[str, Any]:
    """The trial's overrides: the `set` values, its grid point and its random draws.

    Asking again for a value the trial already has returns it, so this also recovers the
    values of a trial an interrupted sweep left running.
    """
    values = {key: trial.suggest_categorical(key, choices) for key, choices in spec.grid.items()}
    values.update({key: dist.suggest(trial, key) for key, dist in spec.random.items()})
    return {**spec.fixed, **values}


def replaced(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of failed trials whose retry has started (they leave the results)."""
    return {
        int(t.user_attrs[RETRY_OF])
        for t in trials
        if RETRY_OF in t.user_attrs and t.state != TrialState.WAITING
    }


def counted(study: optuna.Study) -> int:
    """Trials that use the budget: started or finished, less the failures retried."""
    trials = study.get_trials(deepcopy=False)
    gone = replaced(trials)
    return sum(t.state != TrialState.WAITING and t.number not in gone for t in trials)


def enqueue_retries(study: optuna.Study) -> int:
    """Queue every failed trial's values again (once); returns how many."""
    trials = study.get_trials(deepcopy=False)
    pending = {int(t.user_attrs[RETRY_OF]) for t in trials if RETRY_OF in t.user_attrs}
    count = 0
    for t in trials:
        if t.state == TrialState.FAIL and t.number not in pending and t.params:
            study.enqueue_trial(dict(t.params), user_attrs={RETRY_OF: t.number})
            count += 1
    return count


@dataclass
class TrialQueue:
    """Hands out the trials to run: left running first, then retries, then new ones."""

    study: optuna.Study
    storage: optuna.storages.RDBStorage
    spec: SweepSpec
    budget: int

    def __post_init__(self) -> None:
        trials = self.study.get_trials(deepcopy=False)
        self.stale = [t for t in trials if t.state == TrialState.RUNNING]
        self.points: list[tuple[int, dict[str, Any]]] = []
        if self.spec.sampler != "grid" and self.spec.grid:
            draws = self.spec.samples if self.spec.random else 1
            have = Counter(t.user_attrs.get(POINT) for t in trials if RETRY_OF not in t.user_attrs)
            for i, point in enumerate(grid_points(self.spec)):
                self.points += [(i, point)] * max(0, draws - have[i])

    def resumed(self) -> optuna.Trial | None:
        """A trial an interrupted sweep left running (continued in place), if any."""
        if not self.stale:
            return None
        frozen = self.stale.pop(0)
        study_id = self.storage.get_study_id_from_name(STUDY_NAME)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
        return optuna.trial.Trial(self.study, trial_id)

    def new(self) -> optuna.Trial | None:
        """The next retry or new trial, or None when the budget is used."""
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        retry_waiting = any(RETRY_OF in t.user_attrs for t in waiting)
        if not retry_waiting and counted(self.study) >= self.budget:
            return None
        if not waiting and self.points:
            index, point = self.points.pop(0)
            self.study.enqueue_trial(point, user_attrs={POINT: index})
        return self.study.ask()
