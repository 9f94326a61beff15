"""metrics.csv: one row per logged step, flushed as written so a crashed run keeps its log.

A resumed run first drops rows logged after the checkpoint it resumes from (they will be
logged again), then appends: no step ever appears twice.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpt_tokenizers.atomic import atomic_path

COLUMNS = [
    "step",
    "tokens",
    "train_loss",
    "val_loss",
    "lr",
    "grad_norm",
    "tokens_per_sec",
    "mfu",
    "peak_mem_mb",
    "elapsed_s",
]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class MetricsLogger:
    """Append rows to `path`; `resume_from` (a step) keeps only earlier rows of an old log."""

    def __init__(self, path: Path, resume_from: int | None = None) -> None:
        self.path = path
        kept: list[dict[str, str]] = []
        if resume_from is not None and path.is_file():
            with path.open(newline="") as f:
                kept = [
                    r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= resume_from
                ]
        with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        self.last_step = int(kept[-1]["step"]) if kept else -1
        self.file = path.open("a", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=COLUMNS, extrasaction="ignore")

    def log(self, row: Mapping[str, Any]) -> bool:
        """Append the row; False (and nothing written) for a step already in the log."""
        step = int(row["step"])
        if step <= self.last_step:  # never duplicate a step
            return False
        self.writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        self.file.flush()
        self.last_step = step
        return True

    def close(self) -> None:
        self.file.close()


def read_metrics(path: Path) -> list[dict[str, str]]:
    """The rows of a metrics.csv as dicts of strings."""
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
