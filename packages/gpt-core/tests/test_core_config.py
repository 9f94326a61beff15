"""GPTConfig validation: every bad value names its field and the rule."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
from gpt_core import GPT, ConfigError, GPTConfig
from gpt_core.config import Bound

BASE: dict[str, Any] = dict(vocab_size=50, max_seq_len=16, d_model=32, n_layers=2, n_heads=4)


def make(**kw: Any) -> GPTConfig:
    return GPTConfig(**{**BASE, **kw})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"d_model": 30, "n_heads": 4}, "d_model = 30 must be divisible by n_heads = 4"),
        ({"d_model": 12, "n_heads": 4, "pos_encoding": "rope"}, "rope needs an even head size"),
        ({"vocab_size": 0}, "vocab_size = 0 must be > 0"),
        ({"n_layers": -1}, "n_layers = -1 must be > 0"),
        ({"max_seq_len": 3.5}, "max_seq_len = 3.5 is not a valid int"),
        ({"n_heads": True}, "n_heads = True is not a valid int"),
        ({"dropout": 1.0}, "dropout = 1.0 must be in [0, 1)"),
        ({"mlp_hidden": 0}, "mlp_hidden = 0 must be > 0"),
        ({"pad_vocab_multiple": 0}, "pad_vocab_multiple = 0 must be > 0"),
        ({"bias": "yes"}, "bias = 'yes' is not a valid bool (use true or false)"),
        ({"rope_theta": -1.0}, "rope_theta = -1.0 must be > 0"),
        ({"norm_eps": "small"}, "norm_eps = 'small' is not a valid float"),
    ],
)
def test_invalid_values_name_the_field_and_rule(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        make(**overrides)
    assert err.value.field is not None
    assert str(err.value).startswith(err.value.field)  # so a caller can prefix a section


@pytest.mark.parametrize(
    ("field", "value", "suggestion"),
    [
        ("pos_encoding", "rotary", None),
        ("pos_encoding", "rop", "rope"),
        ("norm", "rms_norm", "rmsnorm"),
        ("mlp", "swiglue", "swiglu"),
        ("attention", "spda", "sdpa"),
    ],
)
def test_unknown_option_lists_choices_and_suggests(
    field: str, value: str, suggestion: str | None
) -> None:
    with pytest.raises(ConfigError) as err:
        make(**{field: value})
    text = str(err.value)
    assert field in text
    assert repr(value) in text
    if suggestion is not None:
        assert f"did you mean {suggestion!r}" in text
    else:
        assert "did you mean" not in text


def test_config_is_frozen() -> None:
    config = make()
    with pytest.raises(AttributeError):
        config.d_model = 64  # type: ignore[misc]


def test_dict_round_trip_and_defaults() -> None:
    config = make(pos_encoding="rope", mlp="swiglu", norm="rmsnorm", pad_vocab_multiple=64)
    assert GPTConfig.from_dict(config.to_dict()) == config
    assert config.padded_vocab_size == 64
    assert config.head_dim == 8
    assert config.hidden_size == 88  # 8/3 * 32 rounded up to a multiple of 8
    assert make().hidden_size == 128
    assert make(mlp_hidden=40).hidden_size == 40


def test_from_dict_names_unknown_keys_and_fills_defaults() -> None:
    expected = "unknown model config key(s): 'n_layer' (did you mean 'n_layers'?)"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        GPTConfig.from_dict({**BASE, "n_layer": 3})
    assert GPTConfig.from_dict({"vocab_size": 50}) == GPTConfig(vocab_size=50)


def test_integer_floats_from_yaml_are_accepted() -> None:
    config = make(dropout=0, rope_theta=500000)
    assert config.rope_theta == 500000.0
    assert isinstance(config.dropout, float)


def test_vocab_size_may_wait_but_a_model_needs_it() -> None:
    config = GPTConfig(max_seq_len=16, d_model=32, n_layers=2, n_heads=4)
    assert config.vocab_size is None
    with pytest.raises(ConfigError, match="vocab_size is not set"):
        GPT(config)
    assert GPT(dataclasses.replace(config, vocab_size=50)).config.padded_vocab_size == 50


@pytest.mark.parametrize(
    ("bound", "words", "inside", "outside"),
    [
        (Bound(gt=0), "> 0", 1e-9, 0.0),
        (Bound(ge=0), ">= 0", 0.0, -1.0),
        (Bound(ge=0, lt=1), "in [0, 1)", 0.5, 1.0),
        (Bound(gt=0, le=1), "in (0, 1]", 1.0, 0.0),
    ],
)
def test_bounds_describe_and_apply_their_rule(
    bound: Bound, words: str, inside: float, outside: float
) -> None:
    assert bound.describe() == words
    assert bound.allows(inside)
    assert not bound.allows(outside)
