"""The sweep file: parsing and checking it, and turning a trial's values into `--set` overrides.

Every trial's values are checked the way `train` will read them, by loading the base config
with the trial's overrides (gpt_train.config.load_config), so a misspelt key or a bad value
is the config's own one-line error, given before any training starts.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from gpt_train import TrainError
from gpt_train.config import load_config

from gpt_eval.errors import EvalError

# metric name -> True when smaller is better
METRICS = {
    "final_val_loss": True,
    "best_val_loss": True,
    "final_train_loss": True,
    "tokens_per_sec": False,
    "wall_time_s": True,
}
SWEEP_KEYS = (
    "base",
    "grid",
    "random",
    "set",
    "samples",
    "max_trials",
    "seed",
    "metric",
    "parallel",
    "out",
    "train_args",
    "command",
    "sampler",
    "pruner",
)
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median")
PRUNER_DEFAULTS = {"startup_trials": 3, "warmup_steps": 0}

GridValue = str | int | float | bool | None


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads exponent floats without a dot (1e-3) as floats, like YAML 1.2.

    PyYAML follows YAML 1.1, where `1e-3` is the string "1e-3"; sweep files are full of them.
    """


_FLOAT = re.compile(
    r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
              |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
              |[0-9][0-9_]*[eE][-+]?[0-9]+
              |\.(?:inf|Inf|INF))$
        |^\.(?:nan|NaN|NAN)$""",
    re.X,
)
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_yaml(path: Path) -> Any:
    """Parse a YAML file with an EvalError naming it on a syntax error."""
    if not path.is_file():
        raise EvalError(f"file not found: {path}")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise EvalError(f"{path} is not valid YAML: {exc}") from None


@dataclass(frozen=True)
class Distribution:
    """A random-search range: uniform, log_uniform, int_uniform (inclusive) or choice."""

    kind: str
    args: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, key: str) -> Any:
        """Ask the study's sampler for this key's value in the trial."""
        if self.kind == "choice":
            return trial.suggest_categorical(key, list(self.args))
        lo, hi = self.args
        if self.kind == "int_uniform":
            return trial.suggest_int(key, int(lo), int(hi))
        return trial.suggest_float(key, float(lo), float(hi), log=self.kind == "log_uniform")

    def probes(self) -> list[Any]:
        """The values checked before a sweep runs: the range's ends, or every choice."""
        return list(self.args)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file."""

    path: Path
    base: Path
    grid: dict[str, list[GridValue]]
    random: dict[str, Distribution]
    fixed: dict[str, Any]
    samples: int = 1
    max_trials: int | None = None
    seed: int = 0
    metric: str = "final_val_loss"
    parallel: int = 1
    out: Path | None = None
    train_args: list[str] = field(default_factory=list)
    command: list[str] | None = None
    sampler: str = "grid"
    pruner: dict[str, int] | None = None  # {"startup_trials": N, "warmup_steps": S} or None

    @property
    def swept_keys(self) -> list[str]:
        return [*self.grid, *self.random]

    @property
    def minimize(self) -> bool:
        return METRICS[self.metric]

    def identity(self) -> dict[str, Any]:
        """What makes two sweeps the same study (budget, parallelism and pruning may change)."""
        return {
            "base": str(self.base.resolve()),
            "grid": self.grid,
            "random": {k: [d.kind, *d.args] for k, d in self.random.items()},
            "set": {k: format_value(v) for k, v in self.fixed.items()},
            "sampler": self.sampler,
            "seed": self.seed,
            "metric": self.metric,
        }


def _suggest_name(word: str, options: tuple[str, ...]) -> str:
    hint = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def _parse_distribution(key: str, raw: Any, where: str) -> Distribution:
    if isinstance(raw, list):  # a bare list in `random` means a choice
        raw = {"choice": raw}
    if not isinstance(raw, dict) or len(raw) != 1:
        raise EvalError(
            f"random key {key!r} in {where} must be one distribution such as "
            f"{{log_uniform: [1e-4, 1e-2]}}; expected one of {', '.join(DISTRIBUTIONS)}"
        )
    kind, args = next(iter(raw.items()))
    if kind not in DISTRIBUTIONS:
        raise EvalError(
            f"unknown distribution {kind!r} for {key!r} in {where}"
            f"{_suggest_name(str(kind), DISTRIBUTIONS)} "
            f"(expected one of {', '.join(DISTRIBUTIONS)})"
        )
    if not isinstance(args, list) or not args:
        raise EvalError(f"{kind} for {key!r} in {where} needs a list of values, got {args!r}")
    if kind == "choice":
        _check_scalars(key, args, where)
    else:
        numeric = all(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
        if len(args) != 2 or not numeric or not args[0] < args[1]:
            raise EvalError(f"{kind} for {key!r} in {where} needs [low, high] with low < high")
        if kind == "log_uniform" and args[0] <= 0:
            raise EvalError(f"log_uniform for {key!r} in {where} needs a positive low bound")
    return Distribution(kind, tuple(args))


def _check_scalars(key: str, values: list[Any], where: str) -> None:
    for value in values:
        if value is not None and not isinstance(value, str | int | float | bool):
            raise EvalError(
                f"value {value!r} for {key!r} in {where}: swept values must be numbers, "
                "strings, booleans or null (put lists under `set`)"
            )


def _positive_int(raw: Any, key: str, where: str, minimum: int = 1) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise EvalError(f"{key!r} in {where} must be an integer >= {minimum}, got {raw!r}")
    return raw


def _parse_pruner(raw: Any, metric: str, where: str) -> dict[str, int] | None:
    """`pruner: median` or `{median: {startup_trials: N, warmup_steps: S}}`; none: no pruning."""
    settings: Any = {}
    if isinstance(raw, dict) and len(raw) == 1:
        raw, settings = next(iter(raw.items()))
    if raw is None or raw == "none":
        return None
    if raw != "median":
        raise EvalError(
            f"pruner {raw!r} in {where}{_suggest_name(str(raw), PRUNERS)} "
            f"(expected {' or '.join(PRUNERS)}, or {{median: {{startup_trials: 3}}}})"
        )
    if not metric.endswith("val_loss"):
        raise EvalError(
            f"pruner in {where} compares validation losses: it needs metric final_val_loss "
            f"or best_val_loss, not {metric}"
        )
    if not isinstance(settings, dict) or not set(settings) <= set(PRUNER_DEFAULTS):
        raise EvalError(f"median pruner in {where} takes {', '.join(PRUNER_DEFAULTS)}")
    merged = {**PRUNER_DEFAULTS, **settings}
    return {k: _positive_int(v, f"pruner.{k}", where, minimum=0) for k, v in merged.items()}


def _mapping(raw: dict[str, Any], section: str, where: str) -> dict[str, Any]:
    body = raw.get(section) or {}
    if not isinstance(body, dict):
        raise EvalError(f"`{section}` in {where} must map dotted keys to values")
    return {str(k): v for k, v in body.items()}


def _resolve_base(raw: Any, path: Path) -> Path:
    base = Path(str(raw))
    if not base.is_absolute() and not base.is_file() and (path.parent / base).is_file():
        base = path.parent / base
    if not base.is_file():
        raise EvalError(f"base config {raw!r} named in {path} not found")
    return base


def _string_list(raw: Any, key: str, where: str) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise EvalError(f"`{key}` in {where} must be a list of strings")
    return [str(c) for c in raw]


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (keys, distributions, sampler, pruner, base config path)."""
    path = Path(path)
    raw = load_yaml(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise EvalError(f"{where} must be a mapping with at least `base` and `grid` or `random`")
    for key in raw:
        if key not in SWEEP_KEYS:
            raise EvalError(
                f"unknown key {key!r} in {where}{_suggest_name(str(key), SWEEP_KEYS)}"
                f" (sweep keys: {', '.join(SWEEP_KEYS)})"
            )
    if "base" not in raw:
        raise EvalError(f"{where} needs `base:`, the path of the train config to start from")
    grid = _mapping(raw, "grid", where)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise EvalError(f"grid key {key!r} in {where} must be a non-empty list of values")
        _check_scalars(key, values, where)
    rand = {k: _parse_distribution(k, v, where) for k, v in _mapping(raw, "random", where).items()}
    fixed = _mapping(raw, "set", where)
    both = set(grid) & set(rand)
    if both:
        raise EvalError(f"key {sorted(both)[0]!r} is in both grid and random in {where}")
    if not grid and not rand:
        raise EvalError(f"{where} sweeps nothing: add a `grid:` or `random:` section")
    metric = str(raw.get("metric", "final_val_loss"))
    if metric not in METRICS:
        raise EvalError(f"metric {metric!r} in {where}: expected one of {', '.join(METRICS)}")
    sampler = str(raw.get("sampler", "random" if rand else "grid"))
    if sampler not in SAMPLERS:
        raise EvalError(
            f"sampler {sampler!r} in {where}{_suggest_name(sampler, SAMPLERS)} "
            f"(expected one of {', '.join(SAMPLERS)})"
        )
    if sampler == "grid" and rand:
        raise EvalError(
            f"sampler grid in {where} cannot draw the `random` keys: use sampler random or tpe"
        )
    max_trials = raw.get("max_trials")
    return SweepSpec(
        path=path,
        base=_resolve_base(raw["base"], path),
        grid=grid,
        random=rand,
        fixed=fixed,
        samples=_positive_int(raw.get("samples", 1), "samples", where),
        max_trials=None if max_trials is None else _positive_int(max_trials, "max_trials", where),
        seed=_positive_int(raw.get("seed", 0), "seed", where, minimum=0),
        metric=metric,
        parallel=_positive_int(raw.get("parallel", 1), "parallel", where),
        out=None if raw.get("out") is None else Path(str(raw["out"])),
        train_args=_string_list(raw.get("train_args"), "train_args", where) or [],
        command=_string_list(raw.get("command"), "command", where),
        sampler=sampler,
        pruner=_parse_pruner(raw.get("pruner"), metric, where),
    )


def grid_points(spec: SweepSpec) -> list[dict[str, GridValue]]:
    """Every combination of the grid values, in the file's order ([{}] without a grid)."""
    keys = list(spec.grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*spec.grid.values())]


def trial_budget(spec: SweepSpec, max_trials: int | None = None) -> int:
    """How many trials the sweep runs: every grid point, `samples` times when drawing at random,
    capped by max_trials (the command's flag wins over the file)."""
    count = len(grid_points(spec)) * (spec.samples if spec.random else 1)
    cap = max_trials if max_trials is not None else spec.max_trials
    return count if cap is None else min(count, cap)


def format_value(value: Any) -> str:
    """A value as `--set key=VALUE` text that YAML reads back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text:
            text = text.replace("e", ".0e")  # 1e-05 -> 1.0e-05 (PyYAML needs the dot)
        return text
    if isinstance(value, int | str):
        return str(value)
    return str(yaml.safe_dump(value, default_flow_style=True)).strip()


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """`section.key=value` strings, as both `train --set` and load_config read them."""
    return [f"{key}={format_value(value)}" for key, value in overrides.items()]


def check_trial(spec: SweepSpec, overrides: Mapping[str, Any]) -> None:
    """EvalError with load_config's one-line message if the trial is not a valid train config."""
    try:
        load_config(spec.base, overrides=override_args(overrides))
    except TrainError as exc:
        raise EvalError(f"{spec.path}: {exc}") from None


def check_trials(spec: SweepSpec) -> None:
    """Check, before anything runs, every grid point with the random keys at their probes.

    Each probe value (a range's ends, each choice) is tried at least once per grid point; a
    drawn value can still break a rule between keys, which fails only that trial.
    """
    probes = {k: d.probes() for k, d in spec.random.items()}
    rounds = max((len(p) for p in probes.values()), default=1)
    for point in grid_points(spec):
        for i in range(rounds):
            drawn = {k: p[i % len(p)] for k, p in probes.items()}
            check_trial(spec, {**spec.fixed, **point, **drawn})
