"""Hyper-parameter sweeps: grid and random search over dotted keys of a train config.

A sweep file names a base train config and the values to try:

    base: configs/tiny.yaml          # relative to the current folder or to this file
    grid: {optim.lr: [1e-3, 3e-4]}   # every combination
    random: {optim.weight_decay: {log_uniform: [1e-3, 1e-1]}}   # `samples` draws per grid point
    set: {train.max_steps: 50}       # applied to every trial
    samples: 1, max_trials: 8, seed: 0, metric: final_val_loss, parallel: 1

Each trial runs the `train` command as a subprocess in `<out>/trial-NNN/run`, with its log in
`<out>/trial-NNN/train.log` and its outcome in `<out>/trial-NNN/trial.json`. A failed trial is
recorded and the sweep goes on; a rerun of the same sweep skips the trials already finished.
The results land in results.csv, results.md and a plot of the metric against each swept key.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gpt_eval.errors import EvalError
from gpt_eval.plots import load_metrics

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
)
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
RESULT_COLUMNS = (
    "final_val_loss",
    "best_val_loss",
    "final_train_loss",
    "tokens_per_sec",
    "wall_time_s",
    "steps",
)


# ---------------------------------------------------------------------------------------------
# YAML: read 1e-3 as a float (PyYAML's YAML 1.1 rules would make it the string "1e-3").


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads exponent floats without a dot (1e-3) as floats, like YAML 1.2."""


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


# ---------------------------------------------------------------------------------------------
# The sweep file.


@dataclass(frozen=True)
class Distribution:
    """A random-search distribution: uniform, log_uniform, int_uniform (inclusive) or choice."""

    kind: str
    args: tuple[Any, ...]

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "choice":
            return rng.choice(self.args)
        lo, hi = self.args
        if self.kind == "int_uniform":
            return rng.randint(int(lo), int(hi))
        if self.kind == "log_uniform":
            value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        else:
            value = rng.uniform(lo, hi)
        return float(f"{value:.4g}")  # 4 significant digits: readable configs, exact --set


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file."""

    path: Path
    base: Path
    grid: dict[str, list[Any]]
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

    @property
    def swept_keys(self) -> list[str]:
        return [*self.grid, *self.random]


@dataclass(frozen=True)
class Trial:
    """One point of the search: its name (folder) and the dotted-key overrides it applies."""

    name: str
    overrides: dict[str, Any]


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
        hint = difflib.get_close_matches(str(kind), DISTRIBUTIONS, n=1)
        raise EvalError(
            f"unknown distribution {kind!r} for {key!r} in {where}"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
            + f" (expected one of {', '.join(DISTRIBUTIONS)})"
        )
    if not isinstance(args, list) or not args:
        raise EvalError(f"{kind} for {key!r} in {where} needs a list of values, got {args!r}")
    if kind != "choice":
        numeric = all(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
        if len(args) != 2 or not numeric or not args[0] < args[1]:
            raise EvalError(f"{kind} for {key!r} in {where} needs [low, high] with low < high")
        if kind == "log_uniform" and args[0] <= 0:
            raise EvalError(f"log_uniform for {key!r} in {where} needs a positive low bound")
    return Distribution(kind, tuple(args))


def _positive_int(raw: Any, key: str, where: str, minimum: int = 1) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise EvalError(f"{key!r} in {where} must be an integer >= {minimum}, got {raw!r}")
    return raw


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (keys, distributions, base config path)."""
    path = Path(path)
    raw = load_yaml(path)
    where = str(path)
    if not isinstance(raw, dict):
        raise EvalError(f"{where} must be a mapping with at least `base` and `grid` or `random`")
    unknown = [k for k in raw if k not in SWEEP_KEYS]
    if unknown:
        hint = difflib.get_close_matches(str(unknown[0]), SWEEP_KEYS, n=1)
        raise EvalError(
            f"unknown key {unknown[0]!r} in {where}"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
            + f" (sweep keys: {', '.join(SWEEP_KEYS)})"
        )
    if "base" not in raw:
        raise EvalError(f"{where} needs `base:`, the path of the train config to start from")
    base = Path(str(raw["base"]))
    if not base.is_absolute() and not base.is_file() and (path.parent / base).is_file():
        base = path.parent / base
    if not base.is_file():
        raise EvalError(f"base config {raw['base']!r} named in {where} not found")

    grid: dict[str, list[Any]] = {}
    for key, values in (raw.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise EvalError(f"grid key {key!r} in {where} must be a non-empty list of values")
        grid[str(key)] = values
    rand = {str(k): _parse_distribution(k, v, where) for k, v in (raw.get("random") or {}).items()}
    fixed = raw.get("set") or {}
    for section in ("grid", "random", "set"):
        if not isinstance(raw.get(section) or {}, dict):
            raise EvalError(f"`{section}` in {where} must map dotted keys to values")
    both = set(grid) & set(rand)
    if both:
        raise EvalError(f"key {sorted(both)[0]!r} is in both grid and random in {where}")
    if not grid and not rand:
        raise EvalError(f"{where} sweeps nothing: add a `grid:` or `random:` section")

    metric = str(raw.get("metric", "final_val_loss"))
    if metric not in METRICS:
        raise EvalError(f"metric {metric!r} in {where}: expected one of {', '.join(METRICS)}")
    max_trials = raw.get("max_trials")
    command = raw.get("command")
    if command is not None and (
        not isinstance(command, list) or not all(isinstance(c, str) for c in command)
    ):
        raise EvalError(f"`command` in {where} must be a list of strings")
    train_args = raw.get("train_args") or []
    if not isinstance(train_args, list):
        raise EvalError(f"`train_args` in {where} must be a list of strings")
    return SweepSpec(
        path=path,
        base=base,
        grid=grid,
        random=rand,
        fixed={str(k): v for k, v in fixed.items()},
        samples=_positive_int(raw.get("samples", 1), "samples", where),
        max_trials=None if max_trials is None else _positive_int(max_trials, "max_trials", where),
        seed=_positive_int(raw.get("seed", 0), "seed", where, minimum=0),
        metric=metric,
        parallel=_positive_int(raw.get("parallel", 1), "parallel", where),
        out=None if raw.get("out") is None else Path(str(raw["out"])),
        train_args=[str(a) for a in train_args],
        command=command,
    )


def expand_trials(spec: SweepSpec, max_trials: int | None = None) -> list[Trial]:
    """Every grid combination times `samples` random draws, capped at the trial budget.

    Deterministic for a given seed, so a resumed sweep sees the same trials.
    """
    rng = random.Random(spec.seed)
    keys = list(spec.grid)
    points = [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*spec.grid.values())
    ]
    draws = spec.samples if spec.random else 1
    overrides: list[dict[str, Any]] = []
    for point in points:
        for _ in range(draws):
            sampled = {k: d.sample(rng) for k, d in spec.random.items()}
            overrides.append({**spec.fixed, **point, **sampled})
    budget = max_trials if max_trials is not None else spec.max_trials
    if budget is not None:
        overrides = overrides[:budget]
    return [Trial(f"trial-{i:03d}", o) for i, o in enumerate(overrides)]


# ---------------------------------------------------------------------------------------------
# Checking keys against the train config dataclasses.


def _leaf_types(cls: type, prefix: str) -> dict[str, Any]:
    """Dotted key -> annotated type for every leaf field of a (nested) dataclass."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = hints.get(f.name, Any)
        key = f"{prefix}{f.name}"
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out.update(_leaf_types(tp, key + "."))
        else:
            out[key] = tp
    return out


def train_config_schema() -> dict[str, Any]:
    """The dotted keys of gpt_train's TrainConfig with their types (model.d_model, optim.lr ...)."""
    from gpt_train.config import TrainConfig

    return _leaf_types(TrainConfig, "")


def _type_accepts(tp: Any, value: Any) -> bool:
    """Does `value` (as parsed from YAML) fit the annotation `tp`? Unknown annotations pass."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_accepts(t, value) for t in typing.get_args(tp))
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return True


def validate_keys(spec: SweepSpec, schema: Mapping[str, Any], trials: Sequence[Trial]) -> None:
    """EvalError for a swept or set key the train config lacks, or a value of the wrong type."""
    sections = sorted({k.split(".")[0] for k in schema})
    for section_name, keys in (("grid", spec.grid), ("random", spec.random), ("set", spec.fixed)):
        for key in keys:
            if key in schema:
                continue
            hint = difflib.get_close_matches(key, list(schema), n=1, cutoff=0.6)
            head = key.split(".")[0]
            known = [k for k in schema if k.startswith(head + ".")]
            listing = (
                f"keys of {head!r}: {', '.join(known)}"
                if known
                else f"sections: {', '.join(sections)}"
            )
            raise EvalError(
                f"unknown config key {key!r} in `{section_name}` of {spec.path}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f" ({listing})"
            )
    for trial in trials:
        for key, value in trial.overrides.items():
            if not _type_accepts(schema[key], value):
                raise EvalError(
                    f"value {value!r} for {key!r} in {spec.path} does not fit the train "
                    f"config type {getattr(schema[key], '__name__', schema[key])}"
                )


# ---------------------------------------------------------------------------------------------
# Running trials.


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


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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


def _was_interrupted(log_path: Path) -> bool:
    """`train` catches Ctrl-C, saves a checkpoint and exits 0 saying "interrupted at step"."""
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return any(ln.startswith("interrupted at step") for ln in text.splitlines())


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)  # atomic: an interrupted sweep never leaves half a trial.json


class TrialRunner:
    """Runs trials as subprocesses and remembers them so Ctrl-C can stop them all."""

    def __init__(
        self, spec: SweepSpec, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        self.spec = spec
        self.command = list(command)
        self.env = dict(env) if env is not None else None
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def argv(self, trial: Trial, run_dir: Path) -> list[str]:
        argv = [*self.command, "--config", str(self.spec.base), "--run-dir", str(run_dir)]
        for key, value in trial.overrides.items():
            argv += ["--set", f"{key}={format_value(value)}"]
        return argv + self.spec.train_args

    def run(self, trial: Trial, trial_dir: Path) -> dict[str, Any]:
        """Run one trial to the end; return (and write to trial.json) its outcome."""
        run_dir = trial_dir / "run"
        if run_dir.exists():
            shutil.rmtree(run_dir)  # left by an interrupted attempt: start it afresh
        trial_dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv(trial, run_dir)
        record: dict[str, Any] = {
            "trial": trial.name,
            "overrides": trial.overrides,
            "command": argv,
            "run_dir": str(run_dir),
        }
        log_path = trial_dir / "train.log"
        start = time.perf_counter()
        with log_path.open("wb") as log:
            try:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)
            except OSError as exc:
                record.update(status="failed", error=f"cannot start {argv[0]}: {exc}")
                _write_json(trial_dir / "trial.json", record)
                return record
            with self._lock:
                self._procs.add(proc)
            returncode = proc.wait()
            with self._lock:
                self._procs.discard(proc)
        record["wall_time_s"] = round(time.perf_counter() - start, 3)
        # Stopped by Ctrl-C (the CLI exits 130) or by us: unfinished, rerun on resume.
        if returncode in (130, -signal.SIGINT, -signal.SIGTERM) or self._stopping:
            record.update(status="interrupted", error=f"interrupted (exit code {returncode})")
            return record
        if returncode < 0:
            record.update(status="failed", error=f"killed by signal {-returncode}")
        elif returncode != 0:
            text = log_path.read_text(encoding="utf-8", errors="replace")
            record.update(status="failed", error=_error_line(text, returncode))
        elif _was_interrupted(log_path):
            record.update(status="interrupted", error="train stopped early (interrupted)")
            return record
        else:
            try:
                record.update(status="ok", **summarize_run(run_dir))
            except EvalError as exc:
                record.update(status="failed", error=f"trial finished but {exc}")
        _write_json(trial_dir / "trial.json", record)
        return record

    def stop_all(self) -> None:
        """Terminate every running trial (on Ctrl-C)."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _finished(trial: Trial, trial_dir: Path, retry_failed: bool) -> dict[str, Any] | None:
    """The stored outcome of a trial a previous run of this sweep finished, else None."""
    path = trial_dir / "trial.json"
    if not path.is_file():
        return None
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    stored = json.loads(json.dumps(record.get("overrides"), default=str))
    wanted = json.loads(json.dumps(trial.overrides, default=str))
    if stored != wanted:
        raise EvalError(
            f"{trial_dir} holds a trial of a different sweep (overrides {stored} instead of "
            f"{wanted}); use another --out folder or delete it"
        )
    if record.get("status") == "ok" or (record.get("status") == "failed" and not retry_failed):
        return record
    return None


# ---------------------------------------------------------------------------------------------
# Results.


def results_table(spec: SweepSpec, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per trial, best first by the sweep's metric (failed trials last)."""
    rows = []
    for rec in records:
        row: dict[str, Any] = {"trial": rec["trial"], "status": rec.get("status")}
        for key in spec.swept_keys:
            row[key] = rec["overrides"].get(key)
        for col in RESULT_COLUMNS:
            row[col] = _json_safe(rec.get(col))
        row["error"] = rec.get("error") or ""
        row["run_dir"] = rec.get("run_dir", "")
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["trial", "status", *spec.swept_keys, *RESULT_COLUMNS,
                                         "error", "run_dir"])  # fmt: skip
    for col in RESULT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    ascending = METRICS[spec.metric]
    frame = frame.sort_values(spec.metric, ascending=ascending, na_position="last", kind="stable")
    return frame.reset_index(drop=True)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """A GitHub Markdown table of the given columns (numbers to 4 significant digits)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def plot_metric_vs_keys(frame: pd.DataFrame, spec: SweepSpec, path: Path) -> Path | None:
    """One panel per swept key: the metric of each finished trial against the key's value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame[frame["status"] == "ok"].dropna(subset=[spec.metric])
    keys = spec.swept_keys
    if ok.empty or not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        values = ok[key].tolist()
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            xs = [float(v) for v in values]
            if min(xs) > 0 and len(set(xs)) > 1 and max(xs) / min(xs) >= 2:
                ax.set_xscale("log")  # learning rates and the like: equal steps per factor
            else:
                ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
            ax.tick_params(axis="x", labelrotation=30)
        else:  # categorical values: one slot per distinct value, in first-seen order
            labels = list(dict.fromkeys(str(v) for v in values))
            xs = [float(labels.index(str(v))) for v in values]
            ax.set_xticks(range(len(labels)), labels)
        ys = ok[spec.metric].tolist()
        ax.scatter(xs, ys, s=36, label="trial")
        # `ok` is sorted best first, so the first point is the best trial.
        ax.scatter(xs[:1], ys[:1], s=140, facecolors="none", edgecolors="red", label="best")
        ax.set_xlabel(key)
        ax.set_ylabel(spec.metric)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{spec.metric} per trial ({'lower' if METRICS[spec.metric] else 'higher'} "
                 "is better)")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def best_config(spec: SweepSpec, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The base train config with a trial's overrides applied (nested sections)."""
    config = load_yaml(spec.base) or {}
    if not isinstance(config, dict):
        raise EvalError(f"base config {spec.base} is not a mapping")
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config


@dataclass
class SweepResult:
    """What a sweep produced: the sorted table, the best trial's record and the files written."""

    table: pd.DataFrame
    best: dict[str, Any] | None
    files: list[Path]


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    command: Sequence[str],
    *,
    max_trials: int | None = None,
    parallel: int | None = None,
    schema: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    log: Callable[[str], None] = print,
) -> SweepResult:
    """Run (or resume) a sweep and write results.csv, results.md, the plot and best_config.yaml.

    `command` starts the train CLI; each trial appends `--config BASE --run-dir DIR --set k=v`.
    `schema` (dotted key -> type, see train_config_schema) checks keys before anything runs.
    """
    trials = expand_trials(spec, max_trials)
    if schema is not None:
        validate_keys(spec, schema, trials)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    workers = parallel if parallel is not None else spec.parallel
    if workers < 1:
        raise EvalError(f"--parallel must be at least 1, got {workers}")
    env = dict(os.environ)
    if workers > 1 and "OMP_NUM_THREADS" not in env:
        # Share the cores between trials instead of oversubscribing them.
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    runner = TrialRunner(spec, command, env)
    _write_json(
        out / "sweep.json",
        {"sweep": str(spec.path), "base": str(spec.base), "metric": spec.metric,
         "trials": [dataclasses.asdict(t) for t in trials]},
    )  # fmt: skip

    records: dict[str, dict[str, Any]] = {}
    todo: list[Trial] = []
    for trial in trials:
        done = _finished(trial, out / trial.name, retry_failed)
        if done is not None:
            records[trial.name] = done
        else:
            todo.append(trial)
    if records:
        log(f"resuming {out}: {len(records)} trial(s) already finished, {len(todo)} to run")
    log(f"sweep: {len(todo)} trial(s) to run, {workers} at a time, results in {out}")

    count = len(records)

    def report(trial: Trial, rec: dict[str, Any]) -> None:
        nonlocal count
        records[trial.name] = rec
        count += 1
        values = ", ".join(
            f"{k}={format_value(v)}" for k, v in trial.overrides.items() if k in spec.swept_keys
        )
        if rec["status"] == "ok":
            outcome = f"{spec.metric}={_cell(rec.get(spec.metric)) or 'n/a'}"
        else:
            outcome = f"{rec['status'].upper()}: {rec.get('error', '')}"
        wall = rec.get("wall_time_s")
        timing = f" ({wall:.1f}s)" if wall is not None else ""
        log(f"[{count}/{len(trials)}] {trial.name} {values}: {outcome}{timing}")

    try:
        if workers > 1 and len(todo) > 1 and not any(r["status"] == "ok" for r in records.values()):
            # The first trial runs alone so one-time setup the trials share (preparing the
            # data set, downloads) happens once instead of racing in parallel.
            first = todo.pop(0)
            report(first, runner.run(first, out / first.name))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures: dict[Future[dict[str, Any]], Trial] = {
                pool.submit(runner.run, t, out / t.name): t for t in todo
            }
            try:
                for fut in as_completed(futures):
                    report(futures[fut], fut.result())
            except KeyboardInterrupt:
                for f in futures:
                    f.cancel()
                raise
    except KeyboardInterrupt:
        runner.stop_all()
        raise

    ordered = [records[t.name] for t in trials if t.name in records]
    table = results_table(spec, ordered)
    files = [out / "results.csv", out / "results.md"]
    table.to_csv(files[0], index=False)
    shown = ["trial", "status", *spec.swept_keys, *RESULT_COLUMNS, "error"]
    files[1].write_text(
        f"# Sweep {spec.path.name}: sorted by {spec.metric} "
        f"({'lower' if METRICS[spec.metric] else 'higher'} is better)\n\n"
        + markdown_table(table, shown)
    )
    plot = plot_metric_vs_keys(table, spec, out / f"{spec.metric}_vs_keys.png")
    if plot is not None:
        files.append(plot)
    best: dict[str, Any] | None = None
    if not table.empty and table.iloc[0]["status"] == "ok" and pd.notna(table.iloc[0][spec.metric]):
        best = records[str(table.iloc[0]["trial"])]
        config_path = out / "best_config.yaml"
        config_path.write_text(
            f"# best trial of {spec.path}: {best['trial']} ({spec.metric}="
            f"{_cell(best.get(spec.metric))})\n"
            + yaml.safe_dump(best_config(spec, best["overrides"]), sort_keys=False)
        )
        files.append(config_path)
    return SweepResult(table=table, best=best, files=files)
