"""configs/names.yaml loads, points at the shipped names list, and trains a model that learns."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from gpt_train.config import load_config
from gpt_train.trainer import train


def test_names_config_is_the_micro_architecture(repo_root: Path) -> None:
    cfg = load_config(repo_root / "configs" / "names.yaml")
    assert (cfg.model.norm, cfg.model.mlp, cfg.model.bias) == ("rmsnorm", "relu", False)
    assert cfg.data.tokenizer == "char"
    assert [(repo_root / p).is_file() for p in cfg.data.input] == [True]


@pytest.mark.slow
def test_names_config_trains(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 steps of the real recipe already beat uniform guessing by a wide margin."""
    monkeypatch.chdir(repo_root)  # data.input is relative to the checkout
    cfg = load_config(
        repo_root / "configs" / "names.yaml",
        overrides=[
            f"data.dir={tmp_path / 'data'}",
            "train.max_steps=40",
            "train.device=cpu",
            "optim.warmup_steps=5",
            "log.eval_interval=40",
            "log.checkpoint_interval=40",
            "log.progress=false",
        ],
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is the fastest
    try:
        result = train(cfg, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    assert result.status == "finished"
    assert result.val_loss is not None
    assert result.val_loss < math.log(28) - 0.5  # 26 letters, "\n" and <eos>
