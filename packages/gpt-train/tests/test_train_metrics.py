"""metrics.csv: rows survive a crash, and a resumed run logs no step twice."""

from __future__ import annotations

from pathlib import Path

from gpt_train.metrics import MetricsLogger, read_metrics


def test_resume_keeps_earlier_rows_and_never_duplicates_a_step(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    log = MetricsLogger(path)
    for step in range(5):
        log.log({"step": step, "train_loss": 1.0 / (step + 1)})
    log.close()  # rows were flushed as written: a crash here would keep them too
    assert [r["step"] for r in read_metrics(path)] == ["0", "1", "2", "3", "4"]
    log = MetricsLogger(path, resume_from=2)
    log.log({"step": 2, "train_loss": 9.0})  # already logged before the checkpoint: skipped
    log.log({"step": 3, "train_loss": 0.5})
    log.close()
    rows = read_metrics(path)
    assert [(r["step"], r["train_loss"]) for r in rows] == [
        ("0", "1"),
        ("1", "0.5"),
        ("2", "0.333333"),
        ("3", "0.5"),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]  # no temporaries
