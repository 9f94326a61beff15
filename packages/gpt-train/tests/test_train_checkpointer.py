"""The checkpointer saves and restores every field of TrainState, also from checkpoints that
kept some of them in meta.json only (saved before every field went into state.pt)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from gpt_core import GPT, GPTConfig
from gpt_train.checkpoint import Checkpointer
from gpt_train.distributed import DistInfo
from gpt_train.state import TrainState, capture_rng


class Counter:
    """A stand-in for the scaler and the sampler: anything with a state_dict."""

    def __init__(self, n: int = 0) -> None:
        self.n = n

    def state_dict(self) -> dict[str, Any]:
        return {"n": self.n}

    def load_state_dict(self, state: dict[str, Any], /) -> None:
        self.n = state["n"]


def checkpointer(folder: Path, seed: int) -> tuple[Checkpointer, GPT, Counter]:
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=32, max_seq_len=8, d_model=16, n_layers=1, n_heads=2)
    model = GPT(config)
    sampler = Counter(seed)
    saver = Checkpointer(
        folder,
        model=model,
        optimizer=torch.optim.AdamW(model.parameters()),
        scaler=Counter(),
        sampler=sampler,
        model_config=config,
        info=DistInfo(),
        keep_last=2,
        seed=0,
    )
    return saver, model, sampler


def saved_state() -> TrainState:
    values: dict[str, Any] = {
        "step": 7,
        "tokens_seen": 4_242,
        "best_val_loss": 2.5,
        "elapsed_s": 12.25,
        "train_loss": 2.75,
        "val_loss": 2.625,
        "rng": capture_rng(DistInfo()),
    }
    # A field added to TrainState must be given a value here, and so is checked below.
    assert set(values) == {f.name for f in fields(TrainState)}
    return TrainState(**values)


def test_every_train_state_field_survives_a_save_and_a_load(tmp_path: Path) -> None:
    saver, model, _ = checkpointer(tmp_path, seed=1)
    state = saved_state()
    saved = saver.save(state)

    other, other_model, sampler = checkpointer(tmp_path, seed=2)
    found = other.load_latest()
    assert found is not None
    path, loaded = found
    assert path == saved
    for f in fields(TrainState):
        if f.name != "rng":
            assert getattr(loaded, f.name) == getattr(state, f.name), f.name
    assert loaded.rng is not None
    assert state.rng is not None
    assert torch.equal(loaded.rng["cpu"][0], state.rng["cpu"][0])
    assert sampler.n == 1  # the parts come back too
    for a, b in zip(model.state_dict().values(), other_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_an_older_checkpoint_reads_its_losses_and_tokens_from_meta(tmp_path: Path) -> None:
    saver, _, _ = checkpointer(tmp_path, seed=1)
    state = saved_state()
    path = saver.save(state)
    assert path is not None
    payload = torch.load(path / "state.pt", weights_only=True)
    for key in ("tokens_seen", "train_loss", "val_loss"):  # as the older format wrote it
        del payload[key]
    torch.save(payload, path / "state.pt")

    found = checkpointer(tmp_path, seed=2)[0].load_latest()
    assert found is not None
    loaded = found[1]
    assert (loaded.tokens_seen, loaded.train_loss, loaded.val_loss) == (4_242, 2.75, 2.625)
    assert (loaded.step, loaded.best_val_loss, loaded.elapsed_s) == (7, 2.5, 12.25)
