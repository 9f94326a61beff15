"""Adam (and AdamW, with decoupled weight decay) on a list of scalar `Value`s.

For each parameter p with gradient g, at step t (counting from 1):
    m = beta1 * m + (1 - beta1) * g          running mean of gradients
    v = beta2 * v + (1 - beta2) * g^2        running mean of squared gradients
    m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t)   undo the bias towards 0 at the start
    p = p - lr * weight_decay * p            AdamW: shrink weights, apart from the gradient
    p = p - lr * m_hat / (sqrt(v_hat) + eps)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gpt_micro.engine import Value


class Adam:
    """Adam with bias correction; `weight_decay > 0` makes it AdamW (torch.optim.AdamW's rule)."""

    def __init__(
        self,
        params: Sequence[Value],
        lr: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        self.params = list(params)
        self.lr = lr
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.m = [0.0] * len(self.params)
        self.v = [0.0] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = 0.0

    def step(self, lr: float | None = None) -> None:
        """Update every parameter from its `.grad`; `lr` overrides the rate for this step."""
        lr = self.lr if lr is None else lr
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for i, p in enumerate(self.params):
            g = p.grad
            self.m[i] = self.beta1 * self.m[i] + (1.0 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1.0 - self.beta2) * g * g
            m_hat = self.m[i] / c1
            v_hat = self.v[i] / c2
            p.data -= lr * self.weight_decay * p.data
            p.data -= lr * m_hat / (math.sqrt(v_hat) + self.eps)
