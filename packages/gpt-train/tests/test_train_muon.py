"""optim.name = muon: Muon on the blocks' matrices and AdamW on the rest, behind one optimizer
that the loop, checkpoints and an exact resume treat like AdamW."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_core import GPT, GPTConfig
from gpt_train import TrainError
from gpt_train.config import OptimSection, TrainConfig, load_config
from gpt_train.metrics import read_metrics
from gpt_train.optim import Fp32Muon, MuonAdamW, _newton_schulz, build_optimizer, muon_params
from gpt_train.runs import load_run
from gpt_train.schedule import lr_at
from gpt_train.trainer import train
from torch.optim._muon import _zeropower_via_newtonschulz

# Tiny models: on a busy machine torch's thread pool only waits on itself.
pytestmark = pytest.mark.usefixtures("one_thread")


def _model(**kw: Any) -> GPT:
    torch.manual_seed(0)
    base: dict[str, Any] = dict(vocab_size=11, max_seq_len=8, d_model=16, n_layers=2, n_heads=2)
    return GPT(GPTConfig(**{**base, **kw}))


@pytest.mark.parametrize("tie", [True, False])
def test_muon_takes_the_block_matrices_and_adamw_everything_else(tie: bool) -> None:
    model = _model(tie_weights=tie, mlp="swiglu")
    opt = build_optimizer(model, OptimSection(name="muon", weight_decay=0.1), "cpu")
    assert isinstance(opt, MuonAdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    muon = {names[id(p)] for g in opt.inner["muon"].param_groups for p in g["params"]}
    adamw = {names[id(p)] for g in opt.inner["adamw"].param_groups for p in g["params"]}
    expected = {n for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2}
    assert muon == expected
    assert len(muon) == 2 * 5
    assert muon.isdisjoint(adamw)
    assert muon | adamw == set(names.values())
    assert "tok_emb.weight" in adamw
    assert ("lm_head.weight" in adamw) is not tie
    adamw_groups = opt.inner["adamw"].param_groups
    decayed = {names[id(p)] for g in adamw_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == ({"lm_head.weight"} if not tie else set())  # embeddings/norms: no decay


def test_one_step_moves_every_parameter_at_the_scheduled_lr() -> None:
    model = _model()
    section = OptimSection(name="muon", lr=1e-2, muon_lr_scale=4.0, warmup_steps=0)
    opt = build_optimizer(model, section, "cpu")
    assert isinstance(opt, MuonAdamW)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for group in opt.param_groups:  # what the training loop does each step
        group["lr"] = lr_at(0, section, 10)
    idx = torch.randint(0, 11, (2, 8))
    _, loss = model(idx, idx)
    assert loss is not None
    loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        assert not torch.equal(p, before[n]), n
    assert [g["lr"] for g in opt.inner["muon"].param_groups] == [4e-2]
    assert {g["lr"] for g in opt.inner["adamw"].param_groups} == {1e-2}


@pytest.fixture(scope="module")
def data_dir(prepared_prefix: Callable[[int], Path]) -> Path:
    return prepared_prefix(30_000)


def _cfg(data_dir: Path, *overrides: str) -> TrainConfig:
    values: dict[str, Any] = {
        "model": {"max_seq_len": 32, "d_model": 32, "n_layers": 1, "n_heads": 2, "dropout": 0.1},
        "data": {"dir": str(data_dir)},
        "optim": {"name": "muon", "lr": 3e-3, "warmup_steps": 2, "decay_steps": 6},
        "train": {"max_steps": 6, "batch_size": 4, "device": "cpu"},
        "log": {"log_interval": 1, "eval_interval": 3, "eval_batches": 2, "sample_interval": 0,
                "checkpoint_interval": 3, "progress": False},
    }  # fmt: skip
    return load_config(values=values, overrides=list(overrides))


def test_a_muon_run_resumes_exactly_and_refuses_another_optimizer(
    data_dir: Path, tmp_path: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train(_cfg(data_dir), straight).step == 6
    assert train(_cfg(data_dir, "train.max_steps=3"), resumed).step == 3
    copy = tmp_path / "copy"
    shutil.copytree(resumed, copy)
    assert train(_cfg(data_dir), resumed, resume=True).step == 6
    keys = ["step", "train_loss", "val_loss", "lr", "grad_norm"]
    rows = [[{k: r[k] for k in keys} for r in read_metrics(run / "metrics.csv")]
            for run in (straight, resumed)]  # fmt: skip
    assert rows[0] == rows[1]
    a, b = (load_run(run, "latest").model.state_dict() for run in (straight, resumed))
    for name in a:
        assert torch.equal(a[name], b[name]), name
    with pytest.raises(TrainError, match=r"optim.name = 'adamw', but the run in .* 'muon'"):
        train(_cfg(data_dir, "optim.name=adamw"), copy, resume=True)


def test_a_plain_adamw_state_is_refused_by_the_muon_optimizer() -> None:
    model = _model()
    adamw = build_optimizer(model, OptimSection(), "cpu")
    muon = build_optimizer(model, OptimSection(name="muon"), "cpu")
    with pytest.raises(TrainError, match="not Muon\\+AdamW"):
        muon.load_state_dict(adamw.state_dict())


def test_the_fp32_muon_of_cpus_follows_torchs_muon() -> None:
    """Fp32Muon (the CPU build) takes torch.optim.Muon's step: equal up to torch's bf16
    rounding, with the same state, and a checkpoint of one loads into the other."""
    models = [_model(), _model()]
    opts: list[torch.optim.Optimizer] = [
        cls(list(muon_params(m)), lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw")
        for cls, m in zip((Fp32Muon, torch.optim.Muon), models, strict=True)
    ]
    idx = torch.randint(0, 11, (2, 8))
    for model, opt in zip(models, opts, strict=True):
        _, loss = model(idx, idx)
        assert loss is not None
        loss.backward()
        opt.step()
    before = {n: p for n, p in _model().named_parameters()}
    for (name, a), b in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        moved = (b - before[name]).norm()
        if name.startswith("blocks.") and a.dim() == 2:
            assert moved > 1e-3, name
            assert (a - b).norm() < 0.2 * moved, name  # torch's bf16 Newton-Schulz
        else:  # not Muon's: untouched by both
            assert torch.equal(a, before[name]), name
    state = opts[1].state_dict()
    opts[0].load_state_dict(state)
    assert opts[0].state_dict()["state"].keys() == state["state"].keys()


@pytest.mark.parametrize("shape", [(48, 16), (16, 64)])
def test_the_fp32_newton_schulz_is_torchs_iteration(shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    g = torch.randn(*shape)
    coefficients = (3.4445, -4.775, 2.0315)
    theirs = _zeropower_via_newtonschulz(g, coefficients, 5, 1e-7)
    assert torch.equal(_newton_schulz(g.bfloat16(), coefficients, 5, 1e-7), theirs)
    ours = _newton_schulz(g, coefficients, 5, 1e-7)
    assert ours.dtype == torch.float32
    assert (ours - theirs.float()).norm() < 0.03 * theirs.float().norm()
