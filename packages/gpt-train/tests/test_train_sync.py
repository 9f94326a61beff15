"""The loop reads the device only at sync steps (gpt_train.window): logging less often
changes no number, a NaN between log steps is still caught by its step, torch.compile
compiles once, and (on CUDA) ordinary steps never synchronise with the host."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_train import TrainError
from gpt_train.config import TrainConfig, load_config
from gpt_train.metrics import read_metrics
from gpt_train.runs import load_run
from gpt_train.trainer import Trainer, train

COMPARED = ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm"]


@pytest.fixture(scope="module")
def data_dir(prepared_prefix: Callable[[int], Path]) -> Path:
    return prepared_prefix(30_000)


def _cfg(data_dir: Path, *overrides: str, device: str = "cpu") -> TrainConfig:
    values: dict[str, Any] = {
        "model": {"max_seq_len": 16, "d_model": 16, "n_layers": 1, "n_heads": 2, "dropout": 0.1},
        "data": {"dir": str(data_dir)},
        "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "decay_steps": 10},
        "train": {"max_steps": 10, "batch_size": 4, "grad_accum": 2, "device": device},
        "log": {"log_interval": 1, "eval_interval": 10, "eval_batches": 2, "sample_interval": 0,
                "checkpoint_interval": 10, "keep_last": 2, "progress": False},
    }  # fmt: skip
    return load_config(values=values, overrides=list(overrides))


def _rows(run: Path) -> dict[str, dict[str, str]]:
    return {r["step"]: {k: r[k] for k in COMPARED} for r in read_metrics(run / "metrics.csv")}


def test_logging_less_often_changes_no_number(data_dir: Path, tmp_path: Path) -> None:
    every = train(_cfg(data_dir), tmp_path / "every")
    fifth = train(_cfg(data_dir, "log.log_interval=5"), tmp_path / "fifth")
    assert (every.train_loss, every.val_loss) == (fifth.train_loss, fifth.val_loss)
    a, b = _rows(tmp_path / "every"), _rows(tmp_path / "fifth")
    assert list(b) == ["5", "10"]
    assert all(b[step] == a[step] for step in b)  # the same loss, norm and lr at shared steps
    weights_a = load_run(tmp_path / "every", "latest").model.state_dict()
    weights_b = load_run(tmp_path / "fifth", "latest").model.state_dict()
    for name, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[name]), name


def test_a_nan_between_log_steps_is_named_by_its_step(data_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "nan"

    def poison(step: int, trainer: Trainer) -> None:
        if step == 2:  # after the step-2 checkpoint: step 3's loss is NaN, read at step 4
            with torch.no_grad():
                trainer.raw_model.tok_emb.weight.fill_(float("nan"))

    overrides = ["log.log_interval=5", "log.checkpoint_interval=2"]
    with pytest.raises(TrainError, match=r"non-finite training loss \(nan\) at step 3: .*0000002"):
        train(_cfg(data_dir, *overrides), run, on_step=poison)
    loaded = load_run(run, "latest")
    assert loaded.step == 2  # nothing was saved from the NaN weights
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())


def test_compiled_training_compiles_once(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over steps with evaluation, logging, a checkpoint and gradient accumulation. Dynamo
    decides guards (and so recompiles) before any backend runs, so the eager backend (no code
    generation) shows what inductor would do, without minutes of C++ builds on a small CPU."""
    import torch._dynamo as dynamo

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    dynamo.reset()
    dynamo.utils.counters.clear()
    monkeypatch.setattr(dynamo.config, "error_on_recompile", True)  # a recompile raises
    cfg = _cfg(data_dir, "train.compile=true", "train.max_steps=6", "log.log_interval=2",
               "log.eval_interval=3", "log.checkpoint_interval=6")  # fmt: skip
    result = train(cfg, tmp_path / "compiled")
    assert result.status == "finished"
    assert result.step == 6
    assert dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it was compiled
    dynamo.reset()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("compile_model", [False, True])
def test_ordinary_cuda_steps_never_synchronise(
    data_dir: Path, tmp_path: Path, compile_model: bool
) -> None:
    """Steps 5-7 of 8 (log every 4th) run with torch's sync debug mode raising on any
    host-device synchronisation: the batch copy, forward, backward, clipping and fused AdamW
    must all stay queued on the device."""
    checked: list[int] = []

    def watch(step: int, trainer: Trainer) -> None:
        if step == 4:  # the first steps warm up (allocator, cuBLAS, compilation)
            torch.cuda.set_sync_debug_mode("error")
        elif step in (5, 6):
            checked.append(step)
        elif step == 7:  # step 8 is a log step: it reads the device on purpose
            checked.append(step)
            torch.cuda.set_sync_debug_mode("default")

    overrides = ["train.max_steps=8", "log.log_interval=4", "log.eval_interval=8",
                 "log.checkpoint_interval=8", "train.precision=bf16",
                 f"train.compile={str(compile_model).lower()}"]  # fmt: skip
    try:
        result = train(_cfg(data_dir, *overrides, device="cuda"), tmp_path / "cuda", on_step=watch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert result.step == 8
    assert checked == [5, 6, 7]
