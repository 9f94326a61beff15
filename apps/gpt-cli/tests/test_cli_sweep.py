"""`uv run sweep` end to end with the real `train` command on a tiny config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from gpt_cli import sweep

TEXT = "Now is the winter of our discontent made glorious summer by this sun of York.\n" * 30


def write_configs(root: Path, grid: str, extra: str = "") -> Path:
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
    path.write_text(
        f"base: tiny.yaml\n{extra}grid:\n{grid}set:\n  train.max_steps: 4\n  optim.min_lr: 0\n"
    )
    return path


@pytest.mark.slow
def test_real_sweep_prunes_a_bad_trial_and_a_rerun_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import matplotlib.image

    # Trials in the file's order (sampler random enqueues the grid): lr 1e-2 finishes, then
    # lr 1e-6 trails it at the first eval and is pruned; `train` stops with its exit code.
    config = write_configs(
        tmp_path,
        "  optim.lr: [1.0e-2, 1.0e-6]\n",
        "sampler: random\npruner: {median: {startup_trials: 1}}\n",
    )
    out = tmp_path / "sweep"
    sweep.main(["--config", str(config), "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out

    table = pd.read_csv(out / "results.csv")
    assert list(table.columns[:3]) == ["trial", "status", "optim.lr"]
    assert {"final_val_loss", "best_val_loss", "tokens_per_sec", "wall_time_s", "error"} <= set(
        table.columns
    )
    ok, pruned = table.iloc[0], table.iloc[1]
    assert (ok["trial"], ok["status"], ok["optim.lr"]) == ("trial-000", "ok", 1e-2)
    assert 0 < ok["final_val_loss"] < 10
    assert ok["best_val_loss"] <= ok["final_val_loss"]
    assert ok["tokens_per_sec"] > 0
    assert ok["steps"] == 4
    assert (pruned["trial"], pruned["status"], pruned["steps"]) == ("trial-001", "pruned", 2)
    assert pruned["error"] == "pruned at step 2"
    assert "interrupted at step 2" in (out / "trial-001" / "train.log").read_text()
    assert (out / "trial-000" / "run" / "metrics.csv").is_file()
    assert "| trial-000 | ok |" in (out / "results.md").read_text()
    assert matplotlib.image.imread(out / "final_val_loss_vs_keys.png").ndim == 3
    best = yaml.safe_load((out / "best_config.yaml").read_text())
    assert best["optim"]["lr"] == 1e-2
    assert best["train"]["max_steps"] == 4
    assert "best: trial-000" in printed
    assert f"wrote {out / 'results.csv'}" in printed

    # Rerun: both trials are finished (ok and pruned), so nothing runs again.
    before = (out / "results.csv").read_text()
    sweep.main(["--config", str(config), "--out", str(out)])
    assert "2 trial(s) already finished, 0 to run" in capsys.readouterr().out
    assert (out / "results.csv").read_text() == before


def test_unknown_key_is_refused_before_any_trial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_configs(tmp_path, "  optim.lrate: [1.0e-3]\n")
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--config", str(config), "--out", str(tmp_path / "sweep")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "optim.lrate" in err  # load_config's own message, naming the key
    assert not (tmp_path / "sweep").exists()


def test_the_shipped_sweep_config_is_valid(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpt_eval.sweep.spec import check_trials, load_sweep, trial_budget

    if not (repo_root / "configs" / "tiny.yaml").is_file():
        pytest.skip("configs/tiny.yaml is not there yet")
    monkeypatch.chdir(repo_root)
    spec = load_sweep(repo_root / "configs" / "sweep.yaml")
    check_trials(spec)  # every trial's values load as a train config
    assert trial_budget(spec) == spec.max_trials
    assert len(spec.grid["optim.lr"]) > 1
