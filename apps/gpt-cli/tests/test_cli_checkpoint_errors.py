"""Broken checkpoint files give `sample` and `train --resume` one `error:` line (exit 2),
never a traceback, and never torch's advice to load with weights_only=False."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from gpt_cli import sample
from gpt_cli import train as train_cli

TEXT = "First Citizen: we are accounted poor citizens, the patricians good.\n" * 30
STEPS = ("step-0000002", "step-0000004")
Break = tuple[str, Callable[[Path], object], str]  # the root conftest's checkpoint_break


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-step char run with checkpoints step-2 and step-4 (config at root/tiny.yaml)."""
    root = tmp_path_factory.mktemp("ckpt_errors")
    (root / "text.txt").write_text(TEXT)
    (root / "tiny.yaml").write_text(
        "model: {max_seq_len: 16, d_model: 16, n_layers: 1, n_heads: 2}\n"
        f"data: {{dir: {root / 'data'}, input: [{root / 'text.txt'}], tokenizer: char}}\n"
        "optim: {lr: 3.0e-3, warmup_steps: 1}\n"
        "train: {max_steps: 4, batch_size: 2, device: cpu}\n"
        "log: {log_interval: 1, eval_interval: 2, eval_batches: 1, sample_interval: 0,\n"
        "      checkpoint_interval: 2, progress: false}\n"
    )
    train_cli.main(["--config", str(root / "tiny.yaml"), "--run-dir", str(root / "run")])
    return root


@pytest.fixture
def root(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of the run (and its config, which reads the shared prepared data)."""
    shutil.copytree(trained / "run", tmp_path / "run")
    shutil.copyfile(trained / "tiny.yaml", tmp_path / "tiny.yaml")
    return tmp_path


def _one_error_line(run: Callable[[], None], capsys: pytest.CaptureFixture[str]) -> str:
    """Run a command expected to fail; return its single error line."""
    with pytest.raises(SystemExit) as exc:
        run()
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "weights_only=False" not in out + err
    assert "pwned" not in out
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def test_resume_with_broken_checkpoints_is_one_line(
    root: Path, checkpoint_break: Break, capsys: pytest.CaptureFixture[str]
) -> None:
    name, damage, reason = checkpoint_break
    for step in STEPS:
        damage(root / "run" / "checkpoints" / step / name)
    args = ["--config", str(root / "tiny.yaml"), "--run-dir", str(root / "run"), "--resume",
            "--max-steps", "6"]  # fmt: skip
    line = _one_error_line(lambda: train_cli.main(args), capsys)
    assert "no usable checkpoint" in line
    assert reason in line


def test_resume_falls_back_to_the_newest_good_checkpoint(
    root: Path, checkpoint_break: Break, capsys: pytest.CaptureFixture[str]
) -> None:
    name, damage, reason = checkpoint_break
    damage(root / "run" / "checkpoints" / STEPS[1] / name)
    train_cli.main(["--config", str(root / "tiny.yaml"), "--run-dir", str(root / "run"),
                    "--resume", "--max-steps", "6"])  # fmt: skip
    out, err = capsys.readouterr()
    skipped = [line for line in err.splitlines() if line.startswith("skipping checkpoint")]
    assert len(skipped) == 1
    assert STEPS[1] in skipped[0]
    assert reason in skipped[0]
    assert "weights_only=False" not in err
    assert "finished 6 steps" in out


@pytest.mark.parametrize("checkpoint_break", ["truncated weights", "corrupt meta"], indirect=True)
def test_sample_a_broken_checkpoint_is_one_line(
    root: Path, checkpoint_break: Break, capsys: pytest.CaptureFixture[str]
) -> None:
    name, damage, reason = checkpoint_break
    for step in (*STEPS, "best"):
        damage(root / "run" / "checkpoints" / step / name)
    run = str(root / "run")
    line = _one_error_line(lambda: sample.main(["--run", run, "--checkpoint", "step-4"]), capsys)
    assert "step-0000004" in line
    assert reason in line
    line = _one_error_line(lambda: sample.main(["--run", run]), capsys)
    assert "no usable checkpoint" in line
