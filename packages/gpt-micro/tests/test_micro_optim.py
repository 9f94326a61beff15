"""gpt_micro's Adam follows torch.optim.AdamW's update exactly, with and without weight decay."""

from __future__ import annotations

import pytest
import torch
from gpt_micro.engine import Value
from gpt_micro.optim import Adam


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_matches_torch_adamw(weight_decay: float) -> None:
    start = [0.5, -1.5, 2.0]
    ours = [Value(x) for x in start]
    theirs = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = Adam(ours, lr=0.05, betas=(0.9, 0.95), eps=1e-8, weight_decay=weight_decay)
    ref = torch.optim.AdamW(
        [theirs], lr=0.05, betas=(0.9, 0.95), eps=1e-8, weight_decay=weight_decay
    )
    for _ in range(7):
        # loss = sum(x_i^3 - 2 x_i): a gradient that changes every step
        opt.zero_grad()
        loss = sum((v**3 - 2 * v for v in ours), Value(0.0))
        loss.backward()
        opt.step()
        ref.zero_grad()
        ref_loss = (theirs * theirs * theirs - 2 * theirs).sum()
        ref_loss.backward()  # type: ignore[no-untyped-call]
        ref.step()
    assert [v.data for v in ours] == pytest.approx(theirs.tolist(), abs=1e-12)


def test_step_lr_overrides_the_rate() -> None:
    v = Value(1.0)
    opt = Adam([v], lr=1.0)
    v.grad = 4.0
    opt.step(lr=0.0)
    assert v.data == 1.0
    opt.step(lr=0.1)  # a bias-corrected Adam step moves by about lr
    assert v.data == pytest.approx(0.9, abs=1e-3)
