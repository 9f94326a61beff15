"""`uv run sweep` end to end with the real `train` command on a tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from gpt_cli import sweep

TEXT = "Now is the winter of our discontent made glorious summer by this sun of York.\n" * 30


def write_configs(root: Path, grid: str) -> Path:
    (root / "text.txt").write_text(TEXT)
    (root / "tiny.yaml").write_text(
        "model: {max_seq_len: 16, d_model: 16, n_layers: 1, n_heads: 2}\n"
        f"data: {{dir: {root / 'data'}, input: [{root / 'text.txt'}], tokenizer: char}}\n"
        "optim: {lr: 1.0e-3, warmup_steps: 1}\n"
        "train: {batch_size: 2, device: cpu}\n"
        "log: {log_interval: 1, eval_interval: 2, eval_batches: 1, sample_interval: 0,\n"
        "      checkpoint_interval: 2, progress: false}\n"
    )
    path = root / "sweep.yaml"
    path.write_text(f"base: tiny.yaml\ngrid:\n{grid}set:\n  train.max_steps: 2\n")
    return path


@pytest.mark.slow
def test_real_sweep_records_a_failure_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.image

    # lr = -1 is refused by train's config check: a failed trial that must not stop the sweep.
    config = write_configs(tmp_path, "  optim.lr: [3.0e-3, -1.0]\n")
    out = tmp_path / "sweep"
    sweep.main(["--config", str(config), "--out", str(out)])
    printed = capsys.readouterr().out

    table = pd.read_csv(out / "results.csv")
    assert list(table.columns[:3]) == ["trial", "status", "optim.lr"]
    assert {"final_val_loss", "best_val_loss", "tokens_per_sec", "wall_time_s", "error"} <= set(
        table.columns
    )
    ok, failed = table.iloc[0], table.iloc[1]
    assert (ok["trial"], ok["status"], ok["optim.lr"]) == ("trial-000", "ok", 3e-3)
    assert 0 < ok["final_val_loss"] < 10
    assert ok["best_val_loss"] <= ok["final_val_loss"]
    assert ok["tokens_per_sec"] > 0
    assert ok["steps"] == 2
    assert failed["status"] == "failed"
    assert "optim.lr" in failed["error"]
    assert (out / "trial-000" / "run" / "metrics.csv").is_file()
    assert "| trial-000 | ok |" in (out / "results.md").read_text()
    assert matplotlib.image.imread(out / "final_val_loss_vs_keys.png").ndim == 3
    best = yaml.safe_load((out / "best_config.yaml").read_text())
    assert best["optim"]["lr"] == 3e-3
    assert best["train"]["max_steps"] == 2
    assert "best: trial-000" in printed
    assert f"wrote {out / 'results.csv'}" in printed

    # Rerun: both trials are finished (ok and failed), so nothing runs again.
    stamp = json.loads((out / "trial-000" / "trial.json").read_text())["wall_time_s"]
    sweep.main(["--config", str(config), "--out", str(out)])
    assert "2 trial(s) already finished, 0 to run" in capsys.readouterr().out
    assert json.loads((out / "trial-000" / "trial.json").read_text())["wall_time_s"] == stamp


def test_unknown_key_is_refused_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_configs(tmp_path, "  optim.lrate: [1.0e-3]\n")
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--config", str(config), "--out", str(tmp_path / "sweep")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optim.lrate'" in err
    assert "did you mean 'optim.lr'" in err
    assert not (tmp_path / "sweep").exists()


def test_the_shipped_sweep_config_is_valid(repo_root: Path) -> None:
    from gpt_eval.sweep import expand_trials, load_sweep, train_config_schema, validate_keys

    path = repo_root / "configs" / "sweep.yaml"
    if not (repo_root / "configs" / "tiny.yaml").is_file():
        pytest.skip("configs/tiny.yaml is not there yet")
    spec = load_sweep(path)
    trials = expand_trials(spec)
    validate_keys(spec, train_config_schema(), trials)
    assert len(trials) == spec.max_trials
    assert len({t.overrides["optim.lr"] for t in trials}) > 1
