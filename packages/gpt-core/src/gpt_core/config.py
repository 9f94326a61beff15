"""GPTConfig: every architectural choice of the model, typed once and validated when built.

Each field's type says what it accepts: options are `Literal` types and numeric limits ride
in the annotation (`Annotated[int, Bound(gt=0)]`). `check_fields` reads those hints, so the
choices and limits are written here only; gpt_train's YAML loader validates its `model`
section by building a GPTConfig and reuses `Bound`/`check_fields` for its own sections.
Bad values raise ConfigError naming the field, the value, the rule and, for a misspelt
option, the closest valid choice. `Bound` is our own marker rather than annotated_types'
`Gt`/`Ge`: gpt-core depends on torch and safetensors only, and pydantic (used by gpt_train)
simply carries unknown markers through to `__post_init__`, where this check runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal


class ConfigError(ValueError):
    """A model config (or a request made of the model) that cannot work, with the reason.

    `field` names the offending field when there is one; the message then starts with it,
    so a caller can prefix a section (`model.` + message) and keep one line.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def suggest(value: str, choices: tuple[str, ...] | list[str]) -> str:
    """A ' (did you mean X?)' hint for a misspelt name, or '' when nothing is close."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Bound:
    """A numeric limit carried in a field's type, e.g. `Annotated[float, Bound(ge=0, lt=1)]`."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def allows(self, x: float) -> bool:
        """Whether `x` lies within every limit that is set."""
        return (
            (self.gt is None or x > self.gt)
            and (self.ge is None or x >= self.ge)
            and (self.lt is None or x < self.lt)
            and (self.le is None or x <= self.le)
        )

    def describe(self) -> str:
        """The rule in words: '> 0', '>= 0', 'in [0, 1)', 'in (0, 1]'."""
        low = f"({self.gt:g}" if self.gt is not None else None
        low = f"[{self.ge:g}" if self.ge is not None else low
        high = f"{self.lt:g})" if self.lt is not None else None
        high = f"{self.le:g}]" if self.le is not None else high
        if low and high:
            return f"in {low}, {high}"
        if low:
            return {"(": "> ", "[": ">= "}[low[0]] + low[1:]
        assert high is not None, "a Bound needs at least one limit"
        return {")": "< ", "]": "<= "}[high[-1]] + high[:-1]


# The field types with a rule, shared with gpt_train's sections.
Positive = Annotated[int, Bound(gt=0)]
Count = Annotated[int, Bound(ge=0)]
PositiveFloat = Annotated[float, Bound(gt=0)]
NonNegative = Annotated[float, Bound(ge=0)]
Fraction = Annotated[float, Bound(ge=0, lt=1)]  # in [0, 1)
PosEncoding = Literal["learned", "rope"]
Norm = Literal["layernorm", "rmsnorm"]
MLPKind = Literal["gelu", "relu", "relu2", "swiglu"]
Attention = Literal["sdpa", "manual"]


@dataclass(frozen=True)
class GPTConfig:
    """The shape and options of a GPT model.

    `vocab_size` may stay None while a training config is loaded (the data's tokenizer fills
    it in, see gpt_train); a GPT cannot be built until it is set. Keeping one dataclass, with
    vocab_size optional, is what lets the train config's `model` section BE this class
    instead of a copy of it. `gelu` is the tanh approximation GPT-2 uses (so GPT-2 weights
    load exactly); `pad_vocab_multiple` rounds the embedding/output matrices up (64 is kind
    to matmul kernels) while logits keep exactly `vocab_size` columns, so a padded id can
    never be predicted or sampled.
    """

    vocab_size: Positive | None = None  # token ids 0..vocab_size-1; None: not known yet
    max_seq_len: Positive = 256  # longest context (the learned position table's rows)
    d_model: Positive = 384  # width of the residual stream
    n_layers: Positive = 6  # transformer blocks
    n_heads: Positive = 6  # attention heads per block (d_model / n_heads = head_dim)
    dropout: Fraction = 0.0  # on attention weights and residual branches while training
    pos_encoding: PosEncoding = "learned"  # position table, or rotary
    rope_theta: PositiveFloat = 10000.0  # RoPE base: larger = slower-turning frequencies
    norm: Norm = "layernorm"  # pre-norm before each sublayer
    norm_eps: PositiveFloat = 1e-5  # added to the variance inside the norm
    mlp: MLPKind = "gelu"  # the feed-forward block's activation
    mlp_hidden: Positive | None = None  # None: 4*d_model, or 8/3*d_model (to 8s) for swiglu
    bias: bool = True  # biases in linear layers and norms
    tie_weights: bool = True  # the output head shares the token embedding matrix
    attention: Attention = "sdpa"  # fused kernel, or the readable maths
    qk_norm: bool = False  # normalise each head's query and key (the `norm` kind) before RoPE
    pad_vocab_multiple: Positive = 1  # round embedding rows up to a multiple of this

    def __post_init__(self) -> None:
        check_fields(self)
        if self.d_model % self.n_heads != 0:
            raise ConfigError(
                f"d_model = {self.d_model} must be divisible by n_heads = {self.n_heads}",
                field="d_model",
            )
        if self.pos_encoding == "rope" and self.head_dim % 2 != 0:
            raise ConfigError(
                f"d_model = {self.d_model} gives an odd head size d_model/n_heads = "
                f"{self.head_dim}, but rope needs an even head size",
                field="d_model",
            )

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.d_model // self.n_heads

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the embedding / output matrices: vocab_size rounded up to the multiple."""
        if self.vocab_size is None:
            raise ConfigError("vocab_size is not set: a model needs its vocabulary size")
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
        """Build from a dict (missing keys keep their defaults), rejecting unknown keys."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"model config must be a mapping, got {type(d).__name__}")
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in d if k not in fields]
        if unknown:
            hints = "; ".join(f"{k!r}{suggest(str(k), fields)}" for k in unknown)
            raise ConfigError(f"unknown model config key(s): {hints}")
        return cls(**dict(d))


# ---------------------------------------------------------------------------------------------
# Checking a dataclass against its own type hints.


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass, Annotated extras kept (computed once)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, include_extras=True)
    return _HINTS[cls]


def check_fields(obj: Any) -> None:
    """Check every field of dataclass `obj` against its annotation (type, Literal, Bound).

    An int given for a float field is stored as a float (YAML writes 10000 for 10000.0).
    """
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        checked = check_value(f.name, value, hints[f.name])
        if checked is not value:
            object.__setattr__(obj, f.name, checked)


def check_value(name: str, value: Any, hint: Any) -> Any:
    """`value` checked against the annotation `hint` (and converted: int -> float)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        value = check_value(name, value, args[0])
        for rule in hint.__metadata__:
            if isinstance(rule, Bound) and not rule.allows(value):
                raise ConfigError(f"{name} = {value!r} must be {rule.describe()}", field=name)
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return check_value(name, value, inner)
    if origin is Literal:
        if value not in args:
            allowed = [str(a) for a in args]
            raise ConfigError(
                f"{name} = {value!r} is not one of {', '.join(allowed)}"
                + suggest(str(value), allowed),
                field=name,
            )
        return value
    expected = origin or hint
    ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ConfigError(f"{name} = {value!r} is not a valid {type_name(hint)}", field=name)
    if expected is float and not math.isfinite(value):  # nan slips past every comparison
        raise ConfigError(f"{name} = {value!r} must be a finite number", field=name)
    return value


def type_name(hint: Any) -> str:
    """'int', 'float', 'bool (use true or false)', 'list', ... for error messages."""
    base = typing.get_origin(hint) or hint
    if base is bool:
        return "bool (use true or false)"
    return str(getattr(base, "__name__", base))
