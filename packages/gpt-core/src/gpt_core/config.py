"""GPTConfig: every architectural choice of the model, validated when it is built.

A config is a frozen dataclass so a model's shape cannot drift after construction; bad values
raise ConfigError naming the field, the rule and, for option names, the closest valid choice.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A model config (or a request made of the model) that cannot work, with the reason."""


POS_ENCODINGS = ("learned", "rope")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "relu", "swiglu")
ATTENTIONS = ("sdpa", "manual")


def suggest(value: str, choices: tuple[str, ...] | list[str]) -> str:
    """A ' (did you mean X?)' hint for a misspelt name, or '' when nothing is close."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class GPTConfig:
    """The shape and options of a GPT model.

    `gelu` is the tanh approximation GPT-2 uses (so GPT-2 weights load exactly);
    `mlp_hidden=None` means 4*d_model, or for swiglu 8/3*d_model rounded up to a multiple of 8
    (which keeps its parameter count close to a 4x gelu MLP); `pad_vocab_multiple` rounds the
    embedding/output matrices up (64 is kind to matmul kernels) while logits still have exactly
    `vocab_size` columns, so a padded id can never be predicted or sampled.
    """

    vocab_size: int
    max_seq_len: int
    d_model: int
    n_layers: int
    n_heads: int
    dropout: float = 0.0
    pos_encoding: str = "learned"
    rope_theta: float = 10000.0
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    mlp: str = "gelu"
    mlp_hidden: int | None = None
    bias: bool = True
    tie_weights: bool = True
    attention: str = "sdpa"
    pad_vocab_multiple: int = 1

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_seq_len", "d_model", "n_layers", "n_heads"):
            _check_positive_int(name, getattr(self, name))
        _check_positive_int("pad_vocab_multiple", self.pad_vocab_multiple)
        if self.mlp_hidden is not None:
            _check_positive_int("mlp_hidden", self.mlp_hidden)
        for name in ("dropout", "rope_theta", "norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{name} must be a number, got {value!r}")
            object.__setattr__(self, name, float(value))  # YAML may give ints
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.rope_theta <= 0 or self.norm_eps <= 0:
            raise ConfigError(
                f"rope_theta and norm_eps must be > 0, got {self.rope_theta}, {self.norm_eps}"
            )
        for name in ("bias", "tie_weights"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name, choices in (
            ("pos_encoding", POS_ENCODINGS),
            ("norm", NORMS),
            ("mlp", MLPS),
            ("attention", ATTENTIONS),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise ConfigError(
                    f"{name} must be one of {', '.join(choices)}; got {value!r}"
                    + suggest(str(value), choices)
                )
        if self.d_model % self.n_heads != 0:
            raise ConfigError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        if self.pos_encoding == "rope" and self.head_dim % 2 != 0:
            raise ConfigError(
                f"rope needs an even head size, but d_model/n_heads = "
                f"{self.d_model}/{self.n_heads} = {self.head_dim}"
            )

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.d_model // self.n_heads

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the embedding / output matrices: vocab_size rounded up to the multiple."""
        m = self.pad_vocab_multiple
        return math.ceil(self.vocab_size / m) * m

    @property
    def hidden_size(self) -> int:
        """Width of the MLP's hidden layer (mlp_hidden, or the default rule)."""
        if self.mlp_hidden is not None:
            return self.mlp_hidden
        if self.mlp == "swiglu":
            return math.ceil(8 * self.d_model / 3 / 8) * 8
        return 4 * self.d_model

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON/YAML friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GPTConfig:
        """Build from a dict, rejecting unknown keys and reporting missing required ones."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"model config must be a mapping, got {type(d).__name__}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in fields]
        if unknown:
            hints = "; ".join(f"{k!r}{suggest(str(k), fields)}" for k in unknown)
            raise ConfigError(f"unknown model config key(s): {hints}")
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [k for k in required if k not in d]
        if missing:
            raise ConfigError(f"model config is missing required key(s): {', '.join(missing)}")
        return cls(**dict(d))


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value}")
