"""The training loop end to end: exact resume, Ctrl-C, divergence, load_run, DDP == 1 process."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_core import SamplingConfig, generate
from gpt_train import TrainError
from gpt_train.config import TrainConfig, load_config
from gpt_train.metrics import read_metrics
from gpt_train.runs import available_checkpoints, load_run
from gpt_train.trainer import Trainer, train

COMPARED = ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm"]


@pytest.fixture(scope="module")
def data_dir(prepared_prefix: Callable[[int], Path]) -> Path:
    return prepared_prefix(60_000)


def _cfg(data_dir: Path, *overrides: str, dropout: float = 0.1) -> TrainConfig:
    values: dict[str, Any] = {
        "model": {"max_seq_len": 32, "d_model": 32, "n_layers": 1, "n_heads": 2,
                  "dropout": dropout},
        "data": {"dir": str(data_dir)},
        "optim": {"lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2, "decay_steps": 8},
        "train": {"max_steps": 8, "batch_size": 4, "grad_accum": 2, "device": "cpu"},
        "log": {"log_interval": 1, "eval_interval": 4, "eval_batches": 2, "sample_interval": 0,
                "checkpoint_interval": 4, "keep_last": 3, "progress": False},
    }  # fmt: skip
    return load_config(values=values, overrides=list(overrides))


def _rows(run: Path) -> list[dict[str, str]]:
    return [{k: r[k] for k in COMPARED} for r in read_metrics(run / "metrics.csv")]


@pytest.fixture(scope="module")
def straight(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 steps in one go (the reference the resumed runs must match digit for digit)."""
    run = tmp_path_factory.mktemp("runs") / "straight"
    result = train(_cfg(data_dir), run)
    assert result.status == "finished"
    assert result.step == 8
    return run


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_run(run, "latest").model.state_dict()


def test_run_folder_layout(straight: Path) -> None:
    names = sorted(p.name for p in straight.iterdir())
    # .train.lock stays (an flock target); the holder's .train.pid goes when the run ends
    assert names == [".train.lock", "checkpoints", "config.yaml", "metrics.csv", "tokenizer.json"]
    assert available_checkpoints(straight) == ["latest", "best", "step-4", "step-8"]
    rows = read_metrics(straight / "metrics.csv")
    assert [r["step"] for r in rows] == [str(s) for s in range(1, 9)]
    assert [r["val_loss"] != "" for r in rows] == [s in (4, 8) for s in range(1, 9)]
    assert all(float(r["mfu"]) > 0 and float(r["tokens_per_sec"]) > 0 for r in rows)
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def test_stop_and_resume_matches_a_straight_run_exactly(data_dir: Path, straight: Path,
                                                        tmp_path: Path) -> None:  # fmt: skip
    run = tmp_path / "resumed"
    first = train(_cfg(data_dir, "train.max_steps=4"), run)
    assert first.status == "finished"
    assert first.step == 4
    second = train(_cfg(data_dir), run, resume=True)
    assert second.step == 8
    assert _rows(run) == _rows(straight)  # every logged digit, dropout included
    for (name, a), b in zip(_final_weights(straight).items(), _final_weights(run).values(),
                            strict=True):  # fmt: skip
        assert torch.equal(a, b), name


def test_ctrl_c_saves_and_resume_continues_exactly(data_dir: Path, straight: Path,
                                                   tmp_path: Path) -> None:  # fmt: skip
    run = tmp_path / "interrupted"

    def press_ctrl_c(step: int, trainer: Trainer) -> None:
        if step == 3:
            signal.raise_signal(signal.SIGINT)

    result = train(_cfg(data_dir), run, on_step=press_ctrl_c)
    assert result.status == "interrupted"
    assert result.step == 3
    assert "step-3" in available_checkpoints(run)
    assert train(_cfg(data_dir), run, resume=True).step == 8
    assert _rows(run) == _rows(straight)


def test_existing_run_needs_resume(data_dir: Path, straight: Path) -> None:
    with pytest.raises(TrainError, match=r"pass resume=True to continue it, overwrite=True"):
        train(_cfg(data_dir), straight)
    assert train(_cfg(data_dir), straight, resume=True).status == "already finished"
    with pytest.raises(TrainError, match="different model section"):
        train(_cfg(data_dir, "model.n_layers=2"), straight, resume=True)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    data_dir: Path, tmp_path: Path
) -> None:
    run = tmp_path / "nan"

    def poison(step: int, trainer: Trainer) -> None:
        if step == 4:  # after the step-4 checkpoint was written
            with torch.no_grad():
                trainer.raw_model.tok_emb.weight.fill_(float("nan"))

    with pytest.raises(TrainError, match=r"non-finite training loss .* at step 5.*step-0000004"):
        train(_cfg(data_dir), run, on_step=poison)
    loaded = load_run(run, "latest")
    assert loaded.step == 4
    assert all(torch.isfinite(p).all() for p in loaded.model.parameters())
    assert [r["step"] for r in read_metrics(run / "metrics.csv")][-1] == "4"


def test_load_run_checkpoints_and_errors(straight: Path, tmp_path: Path) -> None:
    run = load_run(straight, "step-4")
    assert run.step == 4
    assert not run.model.training
    assert run.checkpoint_path.name == "step-0000004"
    assert load_run(straight, "best").step == 8
    assert load_run(straight, str(straight / "checkpoints" / "step-0000008")).step == 8
    with pytest.raises(TrainError, match=r"unknown checkpoint 'step-99'.*available: latest, best"):
        load_run(straight, "step-99")
    with pytest.raises(TrainError, match="run folder not found"):
        load_run(tmp_path / "nope")


def test_a_loaded_run_generates(straight: Path) -> None:
    run = load_run(straight, "best")
    ids = run.tokenizer.encode("ROMEO:")
    out = generate(run.model, torch.tensor([ids]), SamplingConfig(max_new_tokens=5, seed=0))
    assert out.shape == (1, len(ids) + 5)
    assert isinstance(run.tokenizer.decode(out[0].tolist()), str)


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(data_dir: Path, tmp_path: Path) -> None:
    """torchrun with 2 gloo processes and the same global batch (batch 4 x accumulation 2:
    each rank does one of the two micro-steps) reaches the losses of 1 process within
    1e-5 relative (only the order of float additions in the all-reduce differs)."""
    overrides = ["train.max_steps=6", "log.eval_interval=3"]
    cfg = _cfg(data_dir, *overrides, dropout=0.0)
    single = tmp_path / "single"
    train(cfg, single)
    cfg_path = tmp_path / "ddp.yaml"  # explaining step 2 changes no number, on rank 0 only
    dataclasses.replace(cfg, log=dataclasses.replace(cfg.log, explain_interval=2)).save(cfg_path)
    script = tmp_path / "run_train.py"
    script.write_text(
        "import sys\n"
        "from gpt_train.config import load_config\n"
        "from gpt_train.trainer import train\n"
        "train(load_config(sys.argv[1]), sys.argv[2])\n"
    )
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(cfg_path), str(ddp)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    a, b = read_metrics(single / "metrics.csv"), read_metrics(ddp / "metrics.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b] == [str(s) for s in range(1, 7)]
    for ra, rb in zip(a, b, strict=True):
        for key in ("train_loss", "val_loss", "grad_norm"):
            if ra[key]:
                assert float(rb[key]) == pytest.approx(float(ra[key]), rel=1e-5), (ra, rb)
    assert "x2" in out.stdout  # rank 0 reported a world of two
    assert [out.stdout.count(f"=== explain step {n}:") for n in range(1, 7)] == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_explicit_mixed_precision_runs_on_cpu(
    data_dir: Path, tmp_path: Path, precision: str
) -> None:
    """bf16 autocast, and fp16 autocast with a GradScaler, are honoured when asked for."""
    cfg = _cfg(data_dir, "train.max_steps=2", "log.eval_interval=2", f"train.precision={precision}")
    result = train(cfg, tmp_path / precision)
    assert result.val_loss is not None
    assert result.train_loss is not None
    assert 0 < result.val_loss < 10
    state = torch.load(tmp_path / precision / "checkpoints" / "step-0000002" / "state.pt",
                       weights_only=True)  # fmt: skip
    assert bool(state["scaler"]) == (precision == "fp16")  # the scaler's state is saved
