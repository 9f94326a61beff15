"""Run folders: one process at a time, a killed holder's lock taken over, earlier output kept
(--resume or --overwrite, which moves it aside intact), and Ctrl-C that always saves."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gpt_train import TrainError
from gpt_train.config import TrainConfig, load_config
from gpt_train.metrics import read_metrics
from gpt_train.runfolder import RunFolderLock
from gpt_train.runs import available_checkpoints
from gpt_train.trainer import Trainer, train


@pytest.fixture(scope="module")
def data_dir(prepared_prefix: Callable[[int], Path]) -> Path:
    return prepared_prefix(30_000)


def _cfg(data_dir: Path, *overrides: str) -> TrainConfig:
    values: dict[str, Any] = {
        "model": {"max_seq_len": 16, "d_model": 16, "n_layers": 1, "n_heads": 2},
        "data": {"dir": str(data_dir)},
        "optim": {"warmup_steps": 1},
        "train": {"max_steps": 4, "batch_size": 2, "device": "cpu"},
        "log": {"log_interval": 1, "eval_interval": 2, "eval_batches": 1, "sample_interval": 0,
                "checkpoint_interval": 2, "progress": False},
    }  # fmt: skip
    return load_config(values=values, overrides=list(overrides))


@pytest.fixture(scope="module")
def finished(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "finished"
    assert train(_cfg(data_dir), run).status == "finished"
    return run


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".train.")
    }


def test_a_held_folder_is_refused_naming_it_and_the_holder(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = RunFolderLock(run)
    holder.acquire()
    try:
        with pytest.raises(TrainError, match=rf"{run} is in use .*\(PID {os.getpid()}\)"):
            train(_cfg(data_dir), run)
    finally:
        holder.release()
    assert train(_cfg(data_dir, "train.max_steps=1"), run).status == "finished"  # free again


def test_the_lock_of_a_killed_process_is_taken_over(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    code = (
        "import sys, time\n"
        "from gpt_train.runfolder import RunFolderLock\n"
        "lock = RunFolderLock(sys.argv[1])\n"
        "lock.acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(TrainError, match=rf"PID {proc.pid}\)"):
            RunFolderLock(run).acquire()  # held while it lives
    finally:
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait(timeout=30)
    assert train(_cfg(data_dir, "train.max_steps=1"), run).status == "finished"
    assert f"(PID {proc.pid}) ended without letting go; taking it over" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kept", [["checkpoints/best"], ["metrics.csv"], ["config.yaml"], ["tokenizer.json"]]
)
def test_any_earlier_output_is_refused_without_resume(
    data_dir: Path, finished: Path, tmp_path: Path, kept: list[str]
) -> None:
    run = tmp_path / "run"
    for name in kept:  # e.g. best/ alone: a run stopped before its first periodic checkpoint
        src, dst = finished / name, run / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)
    before = _digests(run)
    with pytest.raises(TrainError, match=rf"already holds a run \({kept[0]}\); pass resume=True"):
        train(_cfg(data_dir), run)
    with pytest.raises(TrainError, match=r"nothing to resume .* pass overwrite=True instead"):
        train(_cfg(data_dir), run, resume=True)  # no step checkpoint to continue from
    assert _digests(run) == before  # untouched either way


def test_overwrite_moves_the_old_run_aside_intact(
    data_dir: Path, finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    shutil.rmtree(run / "checkpoints" / "step-0000002")
    shutil.rmtree(run / "checkpoints" / "step-0000004")  # only best/ is left
    before = _digests(run)
    result = train(_cfg(data_dir, "train.max_steps=2"), run, overwrite=True)
    assert result.status == "finished"
    [old] = list(tmp_path.glob("run.old-*"))
    assert f"moved the earlier run in {run} to {old}" in capsys.readouterr().out
    assert _digests(old) == before  # every file, byte for byte
    assert [r["step"] for r in read_metrics(run / "metrics.csv")] == ["1", "2"]
    with pytest.raises(TrainError, match="exclude each other"):
        train(_cfg(data_dir), run, resume=True, overwrite=True)


def test_a_changed_model_on_resume_is_refused_naming_the_key(
    data_dir: Path, finished: Path
) -> None:
    with pytest.raises(TrainError, match=r"model\.d_model = 32, but the run .* with 16"):
        train(_cfg(data_dir, "model.d_model=32", "train.max_steps=6"), finished, resume=True)


def test_one_ctrl_c_arriving_as_several_signals_saves_and_resumes(
    data_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"

    def press_once_delivered_thrice(step: int, trainer: Trainer) -> None:
        if step == 3:
            for _ in range(3):  # the terminal's SIGINT, then copies passed on by launchers
                signal.raise_signal(signal.SIGINT)

    result = train(_cfg(data_dir, "train.max_steps=50"), run, on_step=press_once_delivered_thrice)
    assert (result.status, result.step) == ("interrupted", 3)
    assert "step-3" in available_checkpoints(run)
    assert train(_cfg(data_dir, "train.max_steps=5"), run, resume=True).step == 5


def test_a_separate_second_ctrl_c_aborts_keeping_what_was_saved(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"

    def press_twice(step: int, trainer: Trainer) -> None:
        if step == 2:
            signal.raise_signal(signal.SIGINT)
            time.sleep(1.2)  # a second, deliberate press
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(_cfg(data_dir, "train.max_steps=50"), run, on_step=press_twice)
    out = capsys.readouterr().out
    assert "saving a checkpoint" in out
    assert "aborting without saving" in out
    assert available_checkpoints(run)[-1] == "step-2"  # saved before the press, complete
    assert not (run / ".train.pid").exists()  # the folder was let go
