"""`uv run plot` end to end on metrics.csv files in the train contract's columns."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from gpt_cli import plot

COLUMNS = ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_sec",
           "mfu", "peak_mem_mb", "elapsed_s"]  # fmt: skip


def write_metrics(run: Path, lr: float) -> Path:
    run.mkdir(parents=True)
    path = run / "metrics.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for step in range(1, 31):
            loss = 4.0 / step**0.3
            val = f"{loss + 0.1:.4f}" if step % 10 == 0 else ""
            w.writerow([step, step * 256, loss, val, lr, 1.0, 900.0, 0.01, 100.0, step * 0.1])
    return path


def test_two_runs_on_one_figure_png_and_svg(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.image

    a = write_metrics(tmp_path / "lr-high", 3e-3)
    b = write_metrics(tmp_path / "lr-low", 3e-4)
    plot.main([str(a), str(b), "--out", str(tmp_path / "plots"), "--format", "svg"])
    printed = [ln.removeprefix("wrote ") for ln in capsys.readouterr().out.splitlines()]
    assert len(printed) == 10
    assert all(Path(p).is_file() for p in printed)
    pngs = sorted(Path(p).name for p in printed if p.endswith(".png"))
    assert pngs == ["loss_vs_step.png", "loss_vs_tokens.png", "lr.png", "overview.png",
                    "tokens_per_sec.png"]  # fmt: skip
    for p in printed:
        if p.endswith(".png"):
            assert matplotlib.image.imread(p).shape[2] in (3, 4)
    assert "lr-low" in (tmp_path / "plots" / "loss_vs_step.svg").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "metrics file not found"), ("", "is empty"), ("step,loss\n1,2\n", "lacks the column")],
)
def test_bad_metrics_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "metrics.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        plot.main([str(path), "--out", str(tmp_path / "plots")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
