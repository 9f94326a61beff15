"""A sweep's results: the table (from `study.trials_dataframe()`), Markdown, plot, best config.

Each trial's outcome lives in the study as user attributes (the losses from its
metrics.csv, wall time, steps, error, run folder); the table renames them back to the
columns of results.csv.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import yaml

from gpt_eval.errors import EvalError
from gpt_eval.sweep.spec import METRICS, SweepSpec, load_yaml
from gpt_eval.sweep.study import replaced

RESULT_COLUMNS = (
    "final_val_loss",
    "best_val_loss",
    "final_train_loss",
    "tokens_per_sec",
    "wall_time_s",
    "steps",
)
STATUS = {"COMPLETE": "ok", "PRUNED": "pruned", "RUNNING": "interrupted", "FAIL": "failed"}


def trial_name(number: int) -> str:
    """A trial's folder name in the sweep folder."""
    return f"trial-{number:03d}"


def results_table(spec: SweepSpec, study: optuna.Study) -> pd.DataFrame:
    """One row per trial: finished ones by the metric, best first; then pruned, interrupted
    and failed ones. Trials replaced by a retry, and those not started, are left out."""
    columns = ["trial", "status", *spec.swept_keys, *RESULT_COLUMNS, "error", "run_dir"]
    frame = study.trials_dataframe(attrs=("number", "state", "params", "user_attrs"))
    if frame.empty:
        return pd.DataFrame(columns=columns)
    gone = replaced(study.get_trials(deepcopy=False))
    frame = frame[frame["state"].isin(list(STATUS)) & ~frame["number"].isin(list(gone))]
    frame = frame.rename(
        columns={f"params_{k}": k for k in spec.swept_keys}
        | {f"user_attrs_{k}": k for k in (*RESULT_COLUMNS, "error", "run_dir")}
    ).reindex(columns=[*columns, "number", "state"])
    frame["trial"] = [trial_name(int(n)) for n in frame["number"]]
    frame["status"] = frame["state"].map(STATUS)
    frame["error"] = frame["error"].astype(object).fillna("")
    for col in RESULT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame["rank"] = frame["status"].map({s: i for i, s in enumerate(STATUS.values())})
    frame = frame.sort_values(
        ["rank", spec.metric],
        ascending=[True, METRICS[spec.metric]],
        na_position="last",
        kind="stable",
    )
    return frame[columns].reset_index(drop=True)


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


def _better(spec: SweepSpec) -> str:
    return "lower" if METRICS[spec.metric] else "higher"


def results_markdown(spec: SweepSpec, frame: pd.DataFrame) -> str:
    shown = ["trial", "status", *spec.swept_keys, *RESULT_COLUMNS, "error"]
    title = f"# Sweep {spec.path.name}: sorted by {spec.metric} ({_better(spec)} is better)\n\n"
    return title + markdown_table(frame, shown)


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
    fig.suptitle(f"{spec.metric} per trial ({_better(spec)} is better)")
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


def best_config_yaml(
    spec: SweepSpec, trial: str, value: float, overrides: Mapping[str, Any]
) -> str:
    """best_config.yaml's text: a comment naming the trial, then the config."""
    header = f"# best trial of {spec.path}: {trial} ({spec.metric}={_cell(value)})\n"
    return header + yaml.safe_dump(best_config(spec, overrides), sort_keys=False)
