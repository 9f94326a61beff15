"""The loop's parts: loader, LR schedules, AdamW, precision, checkpoints, metrics.csv."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gpt_core import GPT, GPTConfig
from gpt_tokenizers.atomic import clean_leftovers
from gpt_train import TrainError
from gpt_train import checkpoint as ckpt
from gpt_train.config import OptimSection
from gpt_train.loader import BatchSampler, plan_shard
from gpt_train.metrics import MetricsLogger, read_metrics
from gpt_train.optim import build_optimizer, param_groups
from gpt_train.precision import make_precision, pick_precision
from gpt_train.schedule import lr_at

TOKENS = np.arange(10_000, dtype=np.uint16) % 97


def _sampler(**kw: object) -> BatchSampler:
    args: dict[str, object] = {"seq_len": 16, "batch_size": 4, "grad_accum": 2, "seed": 3}
    args.update(kw)
    return BatchSampler(TOKENS, **args)  # type: ignore[arg-type]


def test_loader_is_deterministic_per_seed_and_step() -> None:
    a, b, c = _sampler(), _sampler(), _sampler(seed=4)
    for _ in range(3):
        xa, xb, xc = a.next(), b.next(), c.next()
        assert all(torch.equal(p[0], q[0]) for p, q in zip(xa, xb, strict=True))
        assert not torch.equal(xa[0][0], xc[0][0])
    x, y = xa[0]
    assert x.shape == (4, 16)
    assert x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one


def test_loader_state_resumes_the_same_stream() -> None:
    a = _sampler()
    for _ in range(5):
        a.next()
    b = _sampler()
    b.load_state_dict(a.state_dict())
    assert all(torch.equal(p[0], q[0]) for p, q in zip(a.next(), b.next(), strict=True))
    with pytest.raises(TrainError, match="seed"):
        _sampler(seed=9).load_state_dict(a.state_dict())


@pytest.mark.parametrize(("batch", "accum"), [(4, 2), (4, 1)])
def test_ranks_share_exactly_the_single_process_batch(batch: int, accum: int) -> None:
    whole = torch.cat([x for x, _ in _sampler(batch_size=batch, grad_accum=accum).next()])
    parts = [
        _sampler(batch_size=batch, grad_accum=accum, rank=r, world_size=2).next() for r in range(2)
    ]
    shard = plan_shard(batch, accum, 2)
    assert all(len(p) == shard.micro_steps for p in parts)
    got = torch.cat([x for p in parts for x, _ in p])
    # same windows overall (the order differs when micro-batches are split)
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, whole.tolist()))
    with pytest.raises(TrainError, match="divisible by 2"):
        plan_shard(3, 1, 2)


def test_eval_batches_are_fixed_and_split_across_ranks() -> None:
    s = _sampler(split="val")
    first, again = s.eval_batches(4), s.eval_batches(4)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(first, again, strict=True))
    r0 = _sampler(split="val", rank=0, world_size=2).eval_batches(4)
    r1 = _sampler(split="val", rank=1, world_size=2).eval_batches(4)
    assert len(r0) == len(r1) == 2
    assert torch.equal(r1[0][0], first[1][0])


def test_too_short_split_is_a_clear_error() -> None:
    with pytest.raises(TrainError, match="fewer than one window"):
        BatchSampler(TOKENS[:10], seq_len=16, batch_size=1)


def test_lr_schedules() -> None:
    cos = OptimSection(lr=1.0, min_lr=0.1, warmup_steps=10, decay_steps=110)
    assert lr_at(0, cos, max_steps=500) == pytest.approx(0.1)
    assert lr_at(9, cos, max_steps=500) == pytest.approx(1.0)
    assert lr_at(60, cos, max_steps=500) == pytest.approx(0.55)  # cosine midpoint
    assert lr_at(110, cos, max_steps=500) == pytest.approx(0.1)
    assert lr_at(500, cos, max_steps=500) == pytest.approx(0.1)  # the floor
    decay = [lr_at(s, cos, max_steps=500) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(decay))
    horizon = dataclasses.replace(cos, decay_steps=None)  # falls back to max_steps
    assert lr_at(60, horizon, max_steps=110) == pytest.approx(0.55)
    wsd = dataclasses.replace(cos, schedule="wsd", decay_fraction=0.2)
    assert lr_at(80, wsd, max_steps=500) == 1.0  # stable until 88
    assert lr_at(99, wsd, max_steps=500) == pytest.approx(1.0 + (0.1 - 1.0) * 11 / 22)
    assert lr_at(50, dataclasses.replace(cos, schedule="constant"), max_steps=500) == 1.0


def test_build_optimizer_takes_the_optim_section() -> None:
    section = OptimSection(lr=0.01, weight_decay=0.2, beta1=0.8, beta2=0.9, eps=1e-6)
    opt = build_optimizer(_model(), section, "cpu")
    assert [g["weight_decay"] for g in opt.param_groups] == [0.2, 0.0]
    assert opt.defaults["lr"] == 0.01
    assert opt.defaults["betas"] == (0.8, 0.9)
    assert opt.defaults["eps"] == 1e-6


def test_param_groups_exclude_norms_biases_and_embeddings() -> None:
    model = GPT(GPTConfig(vocab_size=50, max_seq_len=8, d_model=16, n_layers=2, n_heads=2))
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1
    assert no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    assert decayed
    assert all(n.endswith("weight") for n in decayed)
    assert not any("norm" in n or "emb" in n for n in decayed)
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_precision_auto_is_fp32_on_cpu_and_explicit_choices_hold() -> None:
    assert pick_precision("auto", "cpu") == "fp32"
    assert pick_precision("auto", "mps") == "fp32"
    assert pick_precision("bf16", "cpu") == "bf16"
    p = make_precision("fp16", "cpu")
    assert p.scaler.is_enabled()
    assert not make_precision("fp32", "cpu").scaler.is_enabled()


def _model() -> GPT:
    return GPT(GPTConfig(vocab_size=20, max_seq_len=8, d_model=8, n_layers=1, n_heads=2))


def test_checkpoint_round_trip_with_tied_weights(tmp_path: Path) -> None:
    model = _model()
    rng = torch.get_rng_state()
    state: dict[str, Any] = {"step": 3, "rng": [rng], "x": {"a": [1.5, None]}}
    path = ckpt.save_checkpoint(tmp_path, ckpt.step_name(3), model, {"step": 3}, state)
    other = _model()
    ckpt.load_weights(other, path)
    for (n, p), (_, q) in zip(model.state_dict().items(), other.state_dict().items(), strict=True):
        assert torch.equal(p, q), n
    assert other.lm_head.weight is other.tok_emb.weight  # still tied after loading
    loaded = ckpt.load_state(path)
    assert loaded["step"] == 3
    assert torch.equal(loaded["rng"][0], rng)


def test_a_save_killed_midway_leaves_the_previous_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _model()
    ckpt.save_checkpoint(tmp_path, ckpt.step_name(1), model, {"step": 1}, {"s": 1})

    def crash(*args: object, **kwargs: object) -> None:
        (tmp_path / ".tmp-step-0000002-partial").mkdir(exist_ok=True)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(tmp_path, ckpt.step_name(2), model, {"step": 2}, {"s": 2})
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "step-0000001"
    assert not (tmp_path / "step-0000002").exists()
    clean_leftovers(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-0000001"]


def test_keep_last_k_and_best_is_separate(tmp_path: Path) -> None:
    model = _model()
    for step in range(1, 6):
        ckpt.save_checkpoint(tmp_path, ckpt.step_name(step), model, {"step": step}, {})
        ckpt.prune(tmp_path, keep_last=2)
    ckpt.save_checkpoint(tmp_path, ckpt.BEST, model, {"step": 2})
    ckpt.save_checkpoint(tmp_path, ckpt.BEST, model, {"step": 4})  # replaces the old best
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [4, 5]
    assert ckpt.read_meta(tmp_path / ckpt.BEST)["step"] == 4


def test_state_files_are_never_unpickled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    path = tmp_path / "c"
    path.mkdir()
    torch.save({"evil": Evil()}, path / "state.pt")
    with pytest.raises(TrainError, match="something other than tensors and plain containers"):
        ckpt.load_state(path)
    assert "pwned" not in capsys.readouterr().out


def test_metrics_resume_drops_later_rows_and_never_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    log = MetricsLogger(path)
    for step in (10, 20, 30):
        log.log({"step": step, "train_loss": 1.0 / step, "val_loss": None})
    log.close()
    # the run crashed after logging step 30 but its last checkpoint was step 20
    log = MetricsLogger(path, resume_from=20)
    for step in (20, 30, 40):  # step 20 is already there: skipped
        log.log({"step": step, "train_loss": 2.0, "lr": math.pi})
    log.close()
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == ["10", "20", "30", "40"]
    assert rows[1]["train_loss"] == "0.05"
    assert rows[2]["train_loss"] == "2"
    assert rows[0]["val_loss"] == ""
    assert rows[3]["lr"] == "3.14159"
    assert list(rows[0]) == ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm",
                             "tokens_per_sec", "mfu", "peak_mem_mb", "elapsed_s"]  # fmt: skip
