"""The position-wise feed-forward network of a transformer block."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gpt_core.config import GPTConfig


class MLP(nn.Module):
    """d_model -> hidden -> d_model with GELU (GPT-2's tanh form) or ReLU in between."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.hidden_size, bias=config.bias)
        self.proj = nn.Linear(config.hidden_size, config.d_model, bias=config.bias)
        self.activation = config.mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)  # (B, T, hidden)
        h = F.gelu(h, approximate="tanh") if self.activation == "gelu" else F.relu(h)
        out: torch.Tensor = self.proj(h)  # (B, T, d_model)
        return out


class SwiGLU(nn.Module):
    """Gated MLP: proj(silu(gate(x)) * up(x)), as in PaLM and LLaMA."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(config.d_model, config.hidden_size, bias=config.bias)
        self.up = nn.Linear(config.d_model, config.hidden_size, bias=config.bias)
        self.proj = nn.Linear(config.hidden_size, config.d_model, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.proj(F.silu(self.gate(x)) * self.up(x))
        return out


def make_mlp(config: GPTConfig) -> nn.Module:
    """The feed-forward network the config asks for."""
    return SwiGLU(config) if config.mlp == "swiglu" else MLP(config)
