"""`uv run train` end to end on a tiny config: auto-prepare, train, resume, clear errors."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from gpt_cli.train import build_parser, main
from gpt_eval.sweep.protocol import EXIT_INTERRUPTED
from gpt_train.metrics import read_metrics
from gpt_train.runs import load_run

CONFIG = """\
# a seconds-long run for tests
model: {{max_seq_len: 32, d_model: 32, n_layers: 1, n_heads: 2}}
data: {{dir: {data}, input: [{text}], tokenizer: char}}
optim: {{lr: 3.0e-3, min_lr: 3.0e-4, warmup_steps: 2}}
train: {{max_steps: 6, batch_size: 4, device: cpu}}
log: {{log_interval: 2, eval_interval: 3, eval_batches: 2, sample_interval: 3,
      sample_tokens: 20, checkpoint_interval: 3, progress: false}}
"""


@pytest.fixture
def config(tmp_path: Path, repo_root: Path) -> Path:
    text = tmp_path / "corpus.txt"
    text.write_bytes((repo_root / "corpora" / "tinyshakespeare.txt").read_bytes()[:30_000])
    path = tmp_path / "mini.yaml"
    path.write_text(CONFIG.format(data=tmp_path / "data", text=text))
    return path


def test_train_command_prepares_trains_and_resumes(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main(["--config", str(config), "--run-dir", str(run), "--set", "train.max_steps=3"])
    out = capsys.readouterr().out
    assert "preparing" in out
    assert "--- sample at step 3 ---" in out
    assert f"run folder: {run}" in out
    assert (tmp_path / "data" / "meta.json").is_file()
    main(["--config", str(config), "--run-dir", str(run), "--resume", "--max-steps", "6"])
    out = capsys.readouterr().out
    assert "resumed from" in out
    assert "finished 6 steps" in out
    assert [r["step"] for r in read_metrics(run / "metrics.csv")] == ["2", "3", "4", "6"]
    assert load_run(run).step == 6


def test_an_interrupted_run_saves_and_exits_with_the_documented_code(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    metrics = run / "metrics.csv"

    def press_ctrl_c_once_training() -> None:  # what a terminal's Ctrl-C does, mid-run
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) > 1):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c_once_training, daemon=True)
    presser.start()
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(config), "--run-dir", str(run), "--max-steps", "100000"])
    presser.join()
    assert exc.value.code == EXIT_INTERRUPTED == 75
    out = capsys.readouterr().out
    assert "interrupted at step" in out
    assert "--resume" in out
    assert load_run(run).step > 0  # the checkpoint it saved
    assert str(EXIT_INTERRUPTED) in build_parser().format_help()


def test_run_folder_defaults_to_runs_slash_config_name(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["--config", str(config), "--max-steps", "1"])
    assert (tmp_path / "runs" / "mini" / "checkpoints").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "train.max_stpes=3"], "did you mean 'max_steps'"),
        (["--set", "optim.lr=fast"], "optim.lr = 'fast' is not a valid float"),
        (["--batch-size", "0"], "train.batch_size = 0 must be > 0"),
    ],
)
def test_bad_settings_exit_2_with_one_line(
    config: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(config), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err


def test_missing_config_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--config", "no/such.yaml"])
    assert "config file not found: no/such.yaml" in capsys.readouterr().err
