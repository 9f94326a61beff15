"""How a layer applies its nn.Linear weights: the one seam between a forward and its runner.

Every module writes its maths once, in its forward, and applies each projection through a
`linear(layer, x)` argument. Training and ordinary inference use `apply_linear`, which calls
the nn.Linear module (so hooks such as the tracer's see it); the lean decoding step
(gpt_core.decode) passes a strategy that keeps the same weights in a CPU-friendly layout.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LinearFn = Callable[[nn.Linear, torch.Tensor], torch.Tensor]


def apply_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """y = x W^T + b by calling the module itself."""
    y: torch.Tensor = layer(x)
    return y
