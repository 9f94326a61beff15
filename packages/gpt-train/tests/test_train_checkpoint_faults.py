"""Broken checkpoints: resume and load_run fall back past them, prunes killed midway leave
nothing half-made, and a diverging run never saves (or names) non-finite weights."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_tokenizers.atomic import clean_leftovers
from gpt_train import TrainError
from gpt_train import checkpoint as ckpt
from gpt_train.config import TrainConfig, load_config
from gpt_train.metrics import read_metrics
from gpt_train.runs import available_checkpoints, load_run
from gpt_train.trainer import Trainer, train
from safetensors.torch import load_file

Break = tuple[str, Callable[[Path], object], str]  # the root conftest's checkpoint_break


@pytest.fixture(scope="module")
def data_dir(prepared_prefix: Callable[[int], Path]) -> Path:
    return prepared_prefix(20_000)


def _cfg(data_dir: Path, *overrides: str) -> TrainConfig:
    values: dict[str, Any] = {
        "model": {"max_seq_len": 16, "d_model": 16, "n_layers": 1, "n_heads": 2},
        "data": {"dir": str(data_dir)},
        "optim": {"lr": 3e-3, "warmup_steps": 1},
        "train": {"max_steps": 4, "batch_size": 2, "device": "cpu"},
        "log": {"log_interval": 1, "eval_interval": 2, "eval_batches": 1, "sample_interval": 0,
                "checkpoint_interval": 2, "keep_last": 3, "progress": False},
    }  # fmt: skip
    return load_config(values=values, overrides=list(overrides))


@pytest.fixture(scope="module")
def base_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 steps with checkpoints step-2 and step-4 (and best/)."""
    run = tmp_path_factory.mktemp("runs") / "base"
    train(_cfg(data_dir), run)
    return run


@pytest.fixture
def run(base_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(base_run, copy)
    return copy


def test_resume_falls_back_past_a_broken_latest(
    data_dir: Path, run: Path, checkpoint_break: Break, capsys: pytest.CaptureFixture[str]
) -> None:
    name, damage, reason = checkpoint_break
    latest = run / "checkpoints" / "step-0000004"
    damage(latest / name)
    result = train(_cfg(data_dir, "train.max_steps=6"), run, resume=True)
    out, err = capsys.readouterr()
    assert f"skipping checkpoint {latest}: " in err
    assert reason in err
    assert "weights_only=False" not in err
    assert "pwned" not in out
    assert "step-0000002" in out  # resumed from the newest good one
    assert result.step == 6
    steps = [int(r["step"]) for r in read_metrics(run / "metrics.csv")]
    assert steps == [1, 2, 3, 4, 5, 6]  # rows after step 2 replaced, none twice
    assert load_run(run).step == 6


def test_load_run_skips_a_broken_latest_and_names_the_fault(
    run: Path, checkpoint_break: Break, capsys: pytest.CaptureFixture[str]
) -> None:
    name, damage, reason = checkpoint_break
    damage(run / "checkpoints" / "step-0000004" / name)
    if name == "state.pt":  # sampling needs only the weights: step-4 is still usable
        assert load_run(run).step == 4
        return
    assert load_run(run).step == 2
    assert "skipping checkpoint" in capsys.readouterr().err
    with pytest.raises(TrainError, match=reason) as exc:
        load_run(run, "step-4")
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("checkpoint_break", ["truncated weights"], indirect=True)
def test_resume_with_every_checkpoint_broken_is_one_clear_error(
    data_dir: Path, run: Path, checkpoint_break: Break
) -> None:
    name, damage, _ = checkpoint_break
    for step in ("step-0000002", "step-0000004"):
        damage(run / "checkpoints" / step / name)
    with pytest.raises(TrainError, match=r"no usable checkpoint .* all 2 are broken") as exc:
        train(_cfg(data_dir, "train.max_steps=6"), run, resume=True)
    assert "\n" not in str(exc.value)
    with pytest.raises(TrainError, match="already holds a run"):
        train(_cfg(data_dir, "train.max_steps=6"), run)  # nor is a fresh start overwriting them
    assert load_run(run).checkpoint_path.name == "best"  # best/ is whole: sample still works


def test_half_pruned_leftovers_do_not_break_listing_or_resume(data_dir: Path, run: Path) -> None:
    folder = run / "checkpoints"
    half = folder / "step-0000001"  # what deleting a folder in place leaves when killed
    shutil.copytree(folder / "step-0000002", half)
    (half / "model.safetensors").unlink()
    shutil.copytree(folder / "step-0000002", folder / ".tmp-pruned-step-0000000-99")
    (folder / ".old-step-0000003-98").mkdir()  # a moved-aside folder, half deleted
    (folder / ".old-step-0000003-98" / "meta.json").write_text('{"step": 3}')
    assert available_checkpoints(run) == ["latest", "best", "step-2", "step-4"]
    assert load_run(run).step == 4
    assert train(_cfg(data_dir, "train.max_steps=6"), run, resume=True).step == 6
    # leftovers cleaned up, and the incomplete folders pruned with the old checkpoints
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["best", "step-0000002", "step-0000004", "step-0000006"]


def test_a_prune_killed_midway_never_leaves_a_half_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = torch.nn.Linear(2, 2)
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, ckpt.step_name(step), model, {"step": step}, {"s": 1})

    class Killed(BaseException):
        pass

    def killed_midway(path: Path, *args: object, **kwargs: object) -> None:
        (Path(path) / "state.pt").unlink()  # one file gone, then the process dies
        raise Killed

    monkeypatch.setattr(shutil, "rmtree", killed_midway)
    with pytest.raises(Killed):
        ckpt.prune(tmp_path, keep_last=2)
    monkeypatch.undo()
    for _, path in ckpt.step_folders(tmp_path):  # every real name is a whole checkpoint
        assert sorted(p.name for p in path.iterdir()) == [
            "meta.json",
            "model.safetensors",
            "state.pt",
        ]
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [2, 3]
    clean_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000002", "step-0000003"]


def _poison_adam_at_step_1(step: int, trainer: Trainer) -> None:
    """The next update turns every weight into NaN, although that step's loss is finite."""
    if step == 1:
        for state in trainer.optimizer.state.values():
            state["exp_avg"].fill_(float("nan"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["log.checkpoint_interval=1", "log.eval_interval=100"],
         r"non-finite weights after step 2: .*last good checkpoint is .*step-0000001"),
        (["log.checkpoint_interval=1", "log.eval_interval=2"],
         r"non-finite validation loss \(nan\) at step 2: .*last good checkpoint is .*step-0000001"),
        (["log.checkpoint_interval=2", "log.eval_interval=100"],
         r"non-finite weights after step 2: .*no good checkpoint was saved"),
    ],
)  # fmt: skip
def test_a_diverging_run_never_saves_or_names_non_finite_weights(
    data_dir: Path, tmp_path: Path, overrides: list[str], message: str
) -> None:
    run = tmp_path / "nan"
    with pytest.raises(TrainError, match=message):
        train(_cfg(data_dir, *overrides), run, on_step=_poison_adam_at_step_1)
    saved = [p for p in (run / "checkpoints").glob("*") if not p.name.startswith(".")]
    assert all(p.name in ("best", "step-0000001") for p in saved)
    for path in saved:
        weights = load_file(path / "model.safetensors")
        assert all(torch.isfinite(t).all() for t in weights.values()), path
    best = run / "checkpoints" / "best"
    assert not best.exists() or ckpt.read_meta(best)["step"] == 1
