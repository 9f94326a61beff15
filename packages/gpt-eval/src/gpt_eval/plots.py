"""Training curves from one or more metrics.csv files: loss, learning rate and throughput.

Each run gets one colour on every figure (its label is the run folder's name), train loss is
a solid line and validation loss dashed with markers, so several runs compare at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from gpt_train.metrics import COLUMNS

from gpt_eval.errors import EvalError

# The columns `train` writes, in order: one definition, owned by the logger.
METRICS_COLUMNS = tuple(COLUMNS)
# The ones the plots need; the others may be missing from older or hand-made files.
REQUIRED_COLUMNS = ("step", "tokens", "train_loss", "val_loss", "lr", "tokens_per_sec")
FORMATS = ("png", "svg")


@dataclass
class RunMetrics:
    """One run's metrics table and the label it gets in legends."""

    label: str
    path: Path
    frame: pd.DataFrame


def load_metrics(path: str | Path) -> pd.DataFrame:
    """Read a metrics.csv, with an EvalError naming the file if it is missing, empty or wrong."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.csv"
    if not path.is_file():
        raise EvalError(f"metrics file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise EvalError(
            f"{path} is empty (expected a header and one row per logged step)"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path} is not a readable CSV file: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise EvalError(
            f"{path} lacks the column(s) {', '.join(missing)}; "
            f"expected the metrics.csv columns {', '.join(METRICS_COLUMNS)}"
        )
    if frame.empty:
        raise EvalError(f"{path} has a header but no rows yet (has the run logged a step?)")
    for column in frame.columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def run_labels(paths: Sequence[Path]) -> list[str]:
    """Legend labels: the run folder's name, lengthened by parent folders until unique."""
    parts = [p.resolve().parent.parts if p.suffix else p.resolve().parts for p in paths]
    depth = 1
    while True:
        labels = ["/".join(pp[-depth:]) for pp in parts]
        if len(set(labels)) == len(labels) or depth >= max(len(pp) for pp in parts):
            return labels
        depth += 1


def load_runs(paths: Sequence[str | Path]) -> list[RunMetrics]:
    """Load every metrics file (a CSV, or a run folder holding metrics.csv)."""
    if not paths:
        raise EvalError("no metrics.csv given")
    resolved = [Path(p) for p in paths]
    frames = [load_metrics(p) for p in resolved]
    labels = run_labels(resolved)
    return [RunMetrics(lbl, p, f) for lbl, p, f in zip(labels, resolved, frames, strict=True)]


def _wants_log(values: pd.Series) -> bool:
    """Log scale helps when positive values span more than a factor of ~5."""
    v = values.dropna()
    v = v[v > 0]
    return len(v) > 1 and float(v.max()) / float(v.min()) > 5.0


def _draw_loss(ax: Any, runs: Sequence[RunMetrics], x: str, colors: Sequence[Any]) -> None:
    """Train loss (solid) and validation loss (dashed, markers) against `x`."""
    all_losses = []
    for run, color in zip(runs, colors, strict=True):
        f = run.frame
        train = f[[x, "train_loss"]].dropna()
        val = f[[x, "val_loss"]].dropna()
        ax.plot(train[x], train["train_loss"], color=color, lw=1.2, label=f"{run.label} train")
        if not val.empty:
            ax.plot(
                val[x], val["val_loss"], color=color, ls="--", marker="o", ms=3, lw=1.2,
                label=f"{run.label} val",
            )  # fmt: skip
        all_losses += [train["train_loss"], val["val_loss"]]
    if all_losses and _wants_log(pd.concat(all_losses)):
        ax.set_yscale("log")
    ax.set_ylabel("loss (nats / token)")
    ax.set_xlabel("step" if x == "step" else "tokens seen")
    ax.set_title(f"loss vs {'steps' if x == 'step' else 'tokens'}")


def _draw_column(
    ax: Any, runs: Sequence[RunMetrics], column: str, ylabel: str, colors: Sequence[Any]
) -> None:
    """One column against steps, one line per run."""
    for run, color in zip(runs, colors, strict=True):
        data = run.frame[["step", column]].dropna()
        ax.plot(data["step"], data[column], color=color, lw=1.2, label=run.label)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)


def _finish(ax: Any) -> None:
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")


def plot_runs(
    paths: Sequence[str | Path], out_dir: str | Path, formats: Sequence[str] = ("png",)
) -> list[Path]:
    """Write loss / lr / throughput figures for the given runs; return the files written.

    Files: loss_vs_step, loss_vs_tokens, lr, tokens_per_sec and overview (all four panels),
    each once per format.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise EvalError(f"unknown image format {bad[0]!r}; expected one of {', '.join(FORMATS)}")
    runs = load_runs(paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cmap = plt.get_cmap("tab10")
    colors = [cmap(i % 10) for i in range(len(runs))]

    def lr_panel(ax: Any) -> None:
        _draw_column(ax, runs, "lr", "learning rate", colors)
        ax.set_title("learning rate schedule")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))

    def speed_panel(ax: Any) -> None:
        _draw_column(ax, runs, "tokens_per_sec", "tokens / s", colors)
        ax.set_title("training throughput")
        ax.set_ylim(bottom=0)

    panels = {
        "loss_vs_step": lambda ax: _draw_loss(ax, runs, "step", colors),
        "loss_vs_tokens": lambda ax: _draw_loss(ax, runs, "tokens", colors),
        "lr": lr_panel,
        "tokens_per_sec": speed_panel,
    }
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            fig.savefig(path, dpi=120)
            written.append(path)
        plt.close(fig)

    for name, draw in panels.items():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        draw(ax)
        _finish(ax)
        save(fig, name)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    for ax, draw in zip(axes.flat, panels.values(), strict=True):
        draw(ax)
        _finish(ax)
    fig.suptitle(", ".join(r.label for r in runs), fontsize="medium")
    save(fig, "overview")
    return written
