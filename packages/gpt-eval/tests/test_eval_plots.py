"""Loss / lr / throughput figures from metrics.csv files, and clear errors for bad files."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from gpt_eval import EvalError
from gpt_eval.plots import METRICS_COLUMNS, load_metrics, plot_runs, run_labels


def write_metrics(path: Path, steps: int = 20, lr: float = 1e-3, scale: float = 1.0) -> Path:
    """A metrics.csv in the train contract's columns; val_loss only every 5th row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(METRICS_COLUMNS)
        for i in range(1, steps + 1):
            loss = scale * (4.0 * math.exp(-i / 6) + 1.0)
            val = f"{loss * 1.05:.4f}" if i % 5 == 0 else ""
            w.writerow([i, i * 512, f"{loss:.4f}", val, lr * min(1, i / 5), 0.9, 1000 + i, 0.01,
                        12.5, i * 0.1])  # fmt: skip
    return path


def test_load_metrics_reads_columns_and_blank_val_loss(tmp_path: Path) -> None:
    frame = load_metrics(write_metrics(tmp_path / "run" / "metrics.csv"))
    assert list(frame.columns) == list(METRICS_COLUMNS)
    assert len(frame) == 20
    assert frame["val_loss"].notna().sum() == 4  # blank cells read as NaN


def test_run_folder_is_accepted_for_its_metrics(tmp_path: Path) -> None:
    write_metrics(tmp_path / "run" / "metrics.csv")
    assert len(load_metrics(tmp_path / "run")) == 20


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EvalError, match=r"metrics file not found: .*nope\.csv"):
        load_metrics(tmp_path / "nope.csv")


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(EvalError, match=r"empty\.csv is empty"):
        load_metrics(tmp_path / "empty.csv")


def test_header_only_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "head.csv").write_text(",".join(METRICS_COLUMNS) + "\n")
    with pytest.raises(EvalError, match="no rows"):
        load_metrics(tmp_path / "head.csv")


def test_missing_columns_are_named(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("step,train_loss\n1,2.0\n")
    with pytest.raises(EvalError, match=r"lacks the column\(s\) tokens, val_loss, lr"):
        load_metrics(tmp_path / "m.csv")


def test_labels_are_run_folders_made_unique(tmp_path: Path) -> None:
    a = tmp_path / "a" / "run1" / "metrics.csv"
    b = tmp_path / "b" / "run1" / "metrics.csv"
    c = tmp_path / "b" / "run2" / "metrics.csv"
    assert run_labels([a, c]) == ["run1", "run2"]
    assert run_labels([a, b]) == ["a/run1", "b/run1"]


def test_plot_runs_writes_every_figure_once_per_format(tmp_path: Path) -> None:
    import matplotlib.image

    one = write_metrics(tmp_path / "small" / "metrics.csv")
    two = write_metrics(tmp_path / "big" / "metrics.csv", lr=3e-4, scale=0.8)
    written = plot_runs([one, two], tmp_path / "plots", ["png"])
    assert sorted(p.name for p in written) == [
        "loss_vs_step.png",
        "loss_vs_tokens.png",
        "lr.png",
        "overview.png",
        "tokens_per_sec.png",
    ]
    image = matplotlib.image.imread(tmp_path / "plots" / "overview.png")
    assert image.ndim == 3
    assert image.shape[0] > 200
    assert image.shape[1] > 200


def test_unknown_format_is_rejected(tmp_path: Path) -> None:
    one = write_metrics(tmp_path / "r" / "metrics.csv")
    with pytest.raises(EvalError, match="unknown image format 'jpg'"):
        plot_runs([one], tmp_path / "out", ["jpg"])
