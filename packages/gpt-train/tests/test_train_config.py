"""Config loading: typed sections, --set overrides, and errors that name key, value, allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gpt_core import ConfigError, GPTConfig
from gpt_train import TrainError
from gpt_train.config import TrainConfig, TrainSection, load_config, parse_override


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_yaml_maps_onto_typed_sections(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "model:\n  d_model: 64\n  n_heads: 4\noptim:\n  lr: 3e-4\n"))
    assert isinstance(cfg, TrainConfig)
    assert cfg.model.d_model == 64
    assert cfg.optim.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string
    assert isinstance(cfg.optim.lr, float)
    assert cfg.train.max_steps == TrainConfig().train.max_steps  # defaults fill the rest


def test_set_overrides_parse_values_as_yaml(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path, "train:\n  max_steps: 10\n"),
        overrides=[
            "train.max_steps=200",
            "train.compile=true",
            "optim.lr=0.01",
            "data.input=[a.txt, b.txt]",
            "model.mlp_hidden=null",
            "log.sample_prompt=ROMEO:",
        ],
    )
    assert cfg.train.max_steps == 200
    assert cfg.train.compile is True
    assert cfg.optim.lr == 0.01
    assert cfg.data.input == ["a.txt", "b.txt"]
    assert cfg.model.mlp_hidden is None
    assert cfg.log.sample_prompt == "ROMEO:"


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("model:\n  d_modle: 64\n", [], "unknown key 'model.d_modle' (did you mean 'd_model'?)"),
        ("modle:\n  d_model: 64\n", [], "unknown section 'modle' (did you mean 'model'?)"),
        ("", ["train.max_step=5"], "did you mean 'max_steps'"),
        ("", ["train.max_steps=abc"], "train.max_steps = 'abc' is not a valid int"),
        ("", ["train.max_steps=0"], "train.max_steps = 0 must be > 0"),
        ("", ["train.compile=yes please"], "train.compile = 'yes please' is not a valid bool"),
        ("", ["train.precision=bf61"], "train.precision = 'bf61' is not one of auto, fp32, bf16"),
        ("", ["model.norm=rmsnrom"], "model.norm = 'rmsnrom' is not one of layernorm, rmsnorm"),
        ("", ["model.norm=rmsnrom"], "did you mean 'rmsnorm'"),
        ("", ["model.n_layers=0"], "model.n_layers = 0 must be > 0"),
        ("", ["model.dropout=1.5"], "model.dropout = 1.5 must be in [0, 1)"),
        ("", ["optim.beta2=1"], "optim.beta2 = 1.0 must be in [0, 1)"),
        ("", ["optim.schedule=cosin"], "did you mean 'cosine'"),
        ("", ["optim.min_lr=1.0"], "optim.min_lr = 1.0 must be <= lr = 0.001"),
        ("", ["model.d_model=100", "model.n_heads=3"], "model.d_model = 100 must be divisible"),
        ("", ["trainmax_steps=3"], "expected SECTION.KEY=VALUE"),
        ("", ["data.tokenizer=chr"], "did you mean 'char'"),
        ("- just\n- a list\n", [], "expected a mapping of sections"),
    ],
)
def test_bad_config_fails_naming_key_value_and_allowed(
    tmp_path: Path, text: str, overrides: list[str], expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TrainError, match=re.escape(expected)) as err:
        load_config(path, overrides=overrides)
    message = str(err.value)
    assert "\n" not in message  # one line
    assert message.startswith((str(path), "--set"))  # naming where the problem is


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(TrainError, match="not valid YAML"):
        load_config(_write(tmp_path, "model: [unclosed\n"))


def test_gpt_config_rules_are_checked_before_any_work(tmp_path: Path) -> None:
    # GPTConfig owns shape rules such as an even head size for RoPE; load_config runs them.
    with pytest.raises(TrainError, match=r"config: model\.d_model = 30 .*rope needs an even"):
        load_config(overrides=["model.d_model=30", "model.n_heads=2", "model.pos_encoding=rope"])


def test_model_section_is_gpt_config_with_the_vocabulary_left_to_the_data() -> None:
    cfg = load_config(overrides=["model.d_model=64", "model.n_heads=4", "model.n_layers=2"])
    assert isinstance(cfg.model, GPTConfig)
    assert cfg.model.vocab_size is None  # filled from the tokenizer when training starts
    assert (cfg.model.d_model, cfg.model.n_heads, cfg.model.n_layers) == (64, 4, 2)
    assert load_config(overrides=["model.vocab_size=512"]).model.vocab_size == 512


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=re.escape("max_steps = 0 must be > 0")):
        TrainSection(max_steps=0)


def test_numbers_in_exponent_form_and_single_inputs(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path, "optim:\n  lr: 1e-3\n  eps: 1E-9\ndata:\n  input: a.txt\n"),
        overrides=["train.max_steps=1e3", "train.peak_flops=2e12"],
    )
    assert (cfg.optim.lr, cfg.optim.eps, cfg.train.max_steps) == (1e-3, 1e-9, 1000)
    assert cfg.train.peak_flops == 2e12
    assert cfg.data.input == ["a.txt"]


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(overrides=["train.max_steps=7", "data.input=[x.txt]", "optim.fused=false"])
    cfg.save(tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_parse_override_splits_on_first_equals() -> None:
    assert parse_override("log.sample_prompt=a=b") == ("log", "sample_prompt", "a=b")


@pytest.mark.parametrize(
    "name", ["tiny.yaml", "shakespeare_char.yaml", "rope.yaml", "gpt2_small.yaml", "speedrun.yaml"]
)
def test_shipped_configs_load(repo_root: Path, name: str) -> None:
    text = (repo_root / "configs" / name).read_text()
    assert text.startswith("#")  # each says what it is for and what it should reach
    cfg = load_config(repo_root / "configs" / name)
    for source in cfg.data.input:
        assert (repo_root / source).is_file(), source  # shipped corpora, relative to the root


@pytest.mark.parametrize("text", ["nan", ".nan", "inf", "-.inf", "1e999"])
@pytest.mark.parametrize(
    "key", ["optim.lr", "optim.grad_clip", "model.dropout", "train.peak_flops"]
)
def test_non_finite_numbers_are_refused_for_every_float_key(key: str, text: str) -> None:
    with pytest.raises(TrainError, match=rf"^config: {re.escape(key)} = .* must be"):
        load_config(overrides=[f"{key}={text}"])


def test_every_float_field_refuses_nan() -> None:
    # No float key may slip through: each section's float fields, found from the types.
    import dataclasses
    import typing

    from gpt_train.config import SECTIONS

    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            hint = str(typing.get_type_hints(cls)[f.name])
            if "float" in hint:
                with pytest.raises(TrainError, match=r"finite|must be"):
                    load_config(overrides=[f"{section}.{f.name}=nan"])


def test_a_section_or_key_given_twice_is_an_error_naming_it(tmp_path: Path) -> None:
    twice = _write(tmp_path, "model:\n  d_model: 64\noptim:\n  lr: 1e-3\nmodel:\n  n_layers: 2\n")
    with pytest.raises(TrainError, match=r"c\.yaml: line 5: 'model' appears twice"):
        load_config(twice)
    key_twice = _write(tmp_path, "optim:\n  lr: 1e-3\n  lr: 2e-3\n")
    with pytest.raises(TrainError, match=r"c\.yaml: line 3: 'lr' appears twice"):
        load_config(key_twice)
