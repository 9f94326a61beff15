"""`uv run train` end to end on a tiny config: auto-prepare, train, resume, clear errors."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from gpt_cli.train import build_parser, main
from gpt_eval.sweep.protocol import EXIT_INTERRUPTED
from gpt_train.metrics import read_metrics
from gpt_train.runfolder import RunFolderLock
from gpt_train.runs import available_checkpoints, load_run

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


# -- run folders: one process each, earlier output kept, resume as configured, Ctrl-C ---------

FAST = ["--set", "log.sample_interval=0", "--set", "log.eval_interval=2"]


def _train_command() -> list[str]:
    """`uv run train` as a user types it (uv sets $UV for what it runs), else the module."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        return [uv, "run", "--no-sync", "train"]
    return [sys.executable, "-m", "gpt_cli.train"]


def test_a_second_process_on_a_held_run_folder_is_refused(config: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    lock = RunFolderLock(run)
    lock.acquire()  # this test process holds the folder, as a running `train` would
    try:
        cmd = [
            sys.executable,
            "-m",
            "gpt_cli.train",
            "--config",
            str(config),
            "--run-dir",
            str(run),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        lock.release()
    assert out.returncode == 2, out.stderr
    assert f"run folder {run} is in use by another train process (PID {os.getpid()})" in out.stderr
    assert not (run / "config.yaml").exists()  # nothing of the holder's was touched


def test_resume_continues_with_the_runs_own_config(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main(["--config", str(config), "--run-dir", str(run), *FAST,
          "--set", "train.batch_size=2", "--max-steps", "4"])  # fmt: skip
    main(["--run-dir", str(run), "--resume", "--max-steps", "6"])  # no --config, no --set
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["train"]["batch_size"], saved["train"]["max_steps"]) == (2, 6)
    assert saved["log"]["sample_interval"] == 0
    rows = read_metrics(run / "metrics.csv")
    assert [(r["step"], r["tokens"]) for r in rows][-2:] == [("4", "256"), ("6", "384")]  # 2 x 32
    capsys.readouterr()
    # the config file says batch_size 4; the run's own config wins, and says so
    main(["--config", str(config), "--run-dir", str(run), "--resume", "--max-steps", "8"])
    out = capsys.readouterr().out
    assert "differs in train.batch_size" in out
    assert read_metrics(run / "metrics.csv")[-1]["tokens"] == str(8 * 2 * 32)


def test_changing_the_model_on_resume_names_the_key(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    main(["--config", str(config), "--run-dir", str(run), *FAST, "--max-steps", "2"])
    with pytest.raises(SystemExit) as exc:
        main(["--run-dir", str(run), "--resume", "--set", "model.n_layers=2"])
    assert exc.value.code == 2
    assert "model.n_layers = 2, but the run" in capsys.readouterr().err


def test_resume_without_config_needs_a_run_dir(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--resume"])
    assert exc.value.code == 2
    assert "--config is required (unless --resume with --run-dir)" in capsys.readouterr().err


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    for line in proc.stdout or ():
        lines.put(line)


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_of_uv_run_train_always_saves(
    config: Path, tmp_path: Path, repo_root: Path
) -> None:
    """A terminal's Ctrl-C reaches `uv run` and the trainer alike, maybe forwarded once more;
    pressed as two or three signals in quick succession it must still save and exit 75, and
    the printed command must continue the same run, each of three times."""
    run = tmp_path / "run"
    args = ["--config", str(config), "--run-dir", str(run), *FAST, "--max-steps", "100000"]
    reached = 0
    for attempt in range(3):
        proc = subprocess.Popen(
            [*_train_command(), *args], cwd=repo_root, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc, lines))
        reader.start()
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while not any(x.startswith("step ") for x in seen):  # an eval line: it is training
            assert time.monotonic() < deadline, "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        for _ in range(2 + attempt % 2):  # one press, delivered two or three times
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.02)
        assert proc.wait(timeout=60) == EXIT_INTERRUPTED, "".join(seen)
        reader.join()
        out = "".join(seen) + "".join(lines.queue)
        step = int(re.search(r"interrupted at step (\d+)", out).group(1))  # type: ignore[union-attr]
        assert step > reached
        if attempt:
            assert f"(step {reached})" in out  # it resumed where the last try stopped
        assert f"step-{step}" in available_checkpoints(run)
        reached = step
        # the next try runs exactly what the message says, nothing more
        args = shlex.split(out.split("Continue with: uv run train ")[1].splitlines()[0])
        assert args == ["--run-dir", str(run), "--resume"]
