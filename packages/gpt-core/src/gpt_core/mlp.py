"""The position-wise feed-forward network of a transformer block.

MLPS is the one table of MLP kinds: a new kind is a new entry here (and its name in
GPTConfig's choices). Each forward applies its projections through `linear`
(gpt_core.linear), so the same code serves training and the lean decoding step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gpt_core.config import GPTConfig
from gpt_core.linear import LinearFn, apply_linear

# GELU in the tanh approximation GPT-2 was trained with (so its weights load exactly); a
# partial rather than a def, so decoding a token pays no extra Python call per layer.
gelu_tanh: Callable[[torch.Tensor], torch.Tensor] = functools.partial(F.gelu, approximate="tanh")


class MLP(nn.Module):
    """d_model -> hidden -> d_model with an activation in between (GELU, ReLU or ReLU squared)."""

    def __init__(self, config: GPTConfig, activation: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.hidden_size, bias=config.bias)
        self.proj = nn.Linear(config.hidden_size, config.d_model, bias=config.bias)
        self.activation = activation

    def forward(self, x: torch.Tensor, linear: LinearFn = apply_linear) -> torch.Tensor:
        h = self.activation(linear(self.fc, x))  # (B, T, hidden)
        return linear(self.proj, h)  # (B, T, d_model)


class SwiGLU(nn.Module):
    """Gated MLP: proj(silu(gate(x)) * up(x)), as in PaLM and LLaMA."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(config.d_model, config.hidden_size, bias=config.bias)
        self.up = nn.Linear(config.d_model, config.hidden_size, bias=config.bias)
        self.proj = nn.Linear(config.hidden_size, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor, linear: LinearFn = apply_linear) -> torch.Tensor:
        return linear(self.proj, F.silu(linear(self.gate, x)) * linear(self.up, x))


def relu_squared(x: torch.Tensor) -> torch.Tensor:
    """ReLU(x)**2: a cheap activation that trains faster than GELU at small scale."""
    return torch.square(F.relu(x))


MLPS: dict[str, Callable[[GPTConfig], nn.Module]] = {
    "gelu": lambda c: MLP(c, gelu_tanh),
    "relu": lambda c: MLP(c, F.relu),
    "relu2": lambda c: MLP(c, relu_squared),
    "swiglu": SwiGLU,
}


def make_mlp(config: GPTConfig) -> nn.Module:
    """The feed-forward network the config asks for."""
    return MLPS[config.mlp](config)
