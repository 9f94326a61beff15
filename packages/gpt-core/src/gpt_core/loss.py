"""The training loss: cross-entropy of the output head, a chunk of positions at a time.

The plain way, `F.cross_entropy(x @ W.T, targets)`, first builds the (tokens, vocab) logits:
64 MB for a batch of 16 x 256 tokens over a 4,096-token vocabulary, 3.3 GB for GPT-2's
16 x 1,024 over 50,304. Its backward then allocates several more tensors of that size (the
log-softmax, its gradient, the gradient of the logits). `linear_cross_entropy` gives the same
loss and the same gradients while holding one chunk of logits at a time: it is the training
step's loss (GPT.forward with return_logits=False), and what it saves is memory and the time
spent creating and filling those large tensors.

For a chunk of positions, with p = softmax(logits) and y the one-hot targets, the gradient of
the mean loss with respect to the logits is (p - y) / n, n the number of counted targets. The
loss is a scalar, so that gradient is known in the forward pass: each chunk's is turned into
the gradients of x and W there and then, and the chunk is dropped. Backward only multiplies
them by the incoming gradient (1, or a loss scale, or 1/accumulation steps).
"""

from __future__ import annotations

import torch

# Logits held at once: 2**21 values (8 MB in fp32), 512 positions of a 4,096-token
# vocabulary, but never fewer than MIN_ROWS positions: the weight gradient sums over a
# chunk's positions, and a product with a short inner dimension runs slowly (at GPT-2's
# 50,304 tokens, 41-position chunks took longer than the plain loss; 256 were ~20% faster).
CHUNK_ELEMENTS = 2**21
MIN_ROWS = 256


class _LinearCrossEntropy(torch.autograd.Function):
    """loss = mean over counted positions of cross_entropy(x @ weight.T, targets)."""

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        ignore_index: int,
        rows: int,
        grad_enabled: bool,
    ) -> torch.Tensor:
        # needs_input_grad says which inputs require gradients even under no_grad, where no
        # backward will run: the caller's grad mode decides whether to build them at all.
        needs = ctx.needs_input_grad  # type: ignore[attr-defined]
        want_dx, want_dw = grad_enabled and needs[0], grad_enabled and needs[1]
        counted = targets != ignore_index  # (N,)
        n = counted.sum()
        scale = counted.to(x.dtype) / n  # (N,): each counted position's share of the mean
        safe = torch.where(counted, targets, 0)  # an index gather can read
        dx = torch.empty_like(x) if want_dx else None
        dw = torch.zeros_like(weight) if want_dw else None
        total = x.new_zeros(())
        for start in range(0, x.shape[0], rows):
            part = slice(start, start + rows)
            logits = x[part] @ weight.t()  # (rows, V): the only logits held
            lse = torch.logsumexp(logits, dim=-1)  # (rows,)
            picked = logits.gather(1, safe[part, None])[:, 0]  # the targets' logits
            total += ((lse - picked) * scale[part]).sum()
            if dx is None and dw is None:
                continue  # evaluation: the loss is all
            # dloss/dlogits = (softmax - one_hot) * scale, built in the logits' memory
            grad = logits.sub_(lse[:, None]).exp_()
            grad.scatter_add_(1, safe[part, None], grad.new_full((grad.shape[0], 1), -1.0))
            grad.mul_(scale[part, None])
            if dx is not None:
                torch.mm(grad, weight, out=dx[part])  # (rows, V) @ (V, d)
            if dw is not None:
                dw.addmm_(grad.t(), x[part])  # (V, rows) @ (rows, d), summed over chunks
        ctx.save_for_backward(dx, dw)  # type: ignore[arg-type]  # None is allowed
        return total

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_loss: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None, None, None]:
        dx, dw = ctx.saved_tensors  # type: ignore[attr-defined]
        return (
            None if dx is None else dx * grad_loss,
            None if dw is None else dw * grad_loss,
            None,
            None,
            None,
            None,
        )


def linear_cross_entropy(
    x: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    ignore_index: int = -1,
    chunk_elements: int = CHUNK_ELEMENTS,
    min_rows: int = MIN_ROWS,
) -> torch.Tensor:
    """F.cross_entropy(x @ weight.T, targets, ignore_index=ignore_index), the mean over the
    counted targets, without building the whole logits matrix.

    x (N, d) hidden states, weight (V, d) the output head, targets (N,) ids in [0, V) or
    ignore_index. Gradients reach x and weight as the plain expression's would. A chunk holds
    chunk_elements logits, or min_rows positions if that is more. For fp32 and fp64; under
    autocast use the plain expression (GPT.forward does).
    """
    rows = max(min_rows, chunk_elements // weight.shape[0])
    grad_enabled = torch.is_grad_enabled()
    loss: torch.Tensor = _LinearCrossEntropy.apply(
        x, weight, targets, ignore_index, rows, grad_enabled
    )
    return loss
