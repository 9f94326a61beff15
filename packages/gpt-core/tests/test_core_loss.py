"""The chunked loss: the same loss and gradients as F.cross_entropy on the whole logits."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from gpt_core import GPT, GPTConfig
from gpt_core.loss import linear_cross_entropy


def plain(x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(x @ weight.t(), targets, ignore_index=-1)


def grads(loss_fn: Any, x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> Any:
    xs, ws = x.clone().requires_grad_(), weight.clone().requires_grad_()
    loss = loss_fn(xs, ws, targets)
    loss.backward()
    return loss.detach(), xs.grad, ws.grad


@pytest.mark.parametrize("chunk_elements", [1, 7 * 13, 50 * 13, 10**9])
def test_loss_and_gradients_equal_the_plain_expression(chunk_elements: int) -> None:
    # chunks of one row, of 7 rows (the last one short), of 50 rows, and all rows at once
    torch.manual_seed(0)
    x = torch.randn(45, 6, dtype=torch.float64)
    weight = torch.randn(13, 6, dtype=torch.float64)
    targets = torch.randint(0, 13, (45,))
    targets[::4] = -1  # ignored positions count neither in the loss nor in the mean

    def chunked(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return linear_cross_entropy(a, b, t, chunk_elements=chunk_elements, min_rows=1)

    for got, want in zip(
        grads(chunked, x, weight, targets), grads(plain, x, weight, targets), strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_gradients_follow_the_scale_put_on_the_loss() -> None:
    # gradient accumulation divides the loss; fp16 training multiplies it by a loss scale
    torch.manual_seed(0)
    x = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(9, 4, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 9, (20,))
    torch.autograd.backward(
        linear_cross_entropy(x, weight, targets, chunk_elements=27, min_rows=1) * 0.25
    )
    xg, wg = x.grad, weight.grad
    x.grad = weight.grad = None
    torch.autograd.backward(plain(x, weight, targets) * 0.25)
    torch.testing.assert_close(xg, x.grad)
    torch.testing.assert_close(wg, weight.grad)


def test_no_counted_target_gives_nan_like_cross_entropy() -> None:
    x, weight = torch.randn(5, 3), torch.randn(4, 3)
    ignored = torch.full((5,), -1)
    assert torch.isnan(linear_cross_entropy(x, weight, ignored))
    assert torch.isnan(plain(x, weight, ignored))


def test_without_gradients_the_loss_is_the_same() -> None:
    torch.manual_seed(0)
    x, weight = torch.randn(30, 8), torch.randn(11, 8)
    targets = torch.randint(0, 11, (30,))
    with torch.no_grad():
        got = linear_cross_entropy(x, weight, targets, chunk_elements=44, min_rows=1)
    torch.testing.assert_close(got, plain(x, weight, targets))


@pytest.mark.parametrize(
    "variant", [{}, {"tie_weights": False}, {"vocab_size": 50, "pad_vocab_multiple": 64}]
)
def test_model_trains_alike_with_and_without_logits(variant: dict[str, Any]) -> None:
    # return_logits=False (the training step's form) against the logits and F.cross_entropy,
    # tied and untied heads, and a padded vocabulary whose padded ids must never score
    torch.manual_seed(0)
    base: dict[str, Any] = dict(vocab_size=64, max_seq_len=16, d_model=32, n_layers=2, n_heads=4)
    model = GPT(GPTConfig(**{**base, **variant})).double()
    vocab = int(model.config.vocab_size or 0)
    idx = torch.randint(0, vocab, (3, 16))
    targets = torch.randint(0, vocab, (3, 16))
    targets[0, :5] = -1
    runs = []
    for return_logits in (True, False):
        model.zero_grad()
        logits, loss = model(idx, targets, return_logits=return_logits)
        assert (logits is None) == (not return_logits)
        loss.backward()
        runs.append(
            (loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None])
        )
    (loss_a, grads_a), (loss_b, grads_b) = runs
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_under_autocast_the_loss_is_the_plain_one() -> None:
    # the chunked loss does not copy autocast's casts, so autocast keeps the plain loss
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, max_seq_len=8, d_model=16, n_layers=1, n_heads=2))
    idx, targets = torch.randint(0, 64, (2, 8)), torch.randint(0, 64, (2, 8))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss = model(idx, targets, return_logits=False)
        _, want = model(idx, targets)
    assert logits is None
    assert torch.equal(loss, want)


def test_a_bf16_model_scores_its_loss_in_fp32() -> None:
    # a bf16 log-softmax over the vocabulary would round the loss to bf16's 3 digits
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, max_seq_len=8, d_model=16, n_layers=1, n_heads=2))
    model = model.to(torch.bfloat16)
    idx, targets = torch.randint(0, 64, (2, 8)), torch.randint(0, 64, (2, 8))
    with torch.no_grad():
        logits, loss = model(idx, targets)
    assert logits is not None
    assert logits.dtype == torch.bfloat16
    assert loss is not None
    assert loss.dtype == torch.float32
    want = F.cross_entropy(logits.float().reshape(-1, 64), targets.reshape(-1))
    torch.testing.assert_close(loss, want)
