"""Training configuration: YAML files mapped onto typed dataclasses, with `--set` overrides.

A config has five sections, each a dataclass below: `model` (maps onto gpt_core.GPTConfig),
`data`, `optim`, `train` and `log`. Everything is checked when the config is loaded, before
any data is read or any model is built: an unknown key gets a close-match suggestion, a
wrong type or an impossible value names the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Union

import yaml

from gpt_train.errors import TrainError


@dataclass
class ModelSection:
    """The GPT's shape; every key is a gpt_core.GPTConfig field of the same name.

    vocab_size is normally left empty: it is then taken from the prepared data's tokenizer.
    """

    vocab_size: int | None = None
    max_seq_len: int = 256  # also the length of the training windows
    d_model: int = 384
    n_layers: int = 6
    n_heads: int = 6
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

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "pos_encoding": ("learned", "rope"),
        "norm": ("layernorm", "rmsnorm"),
        "mlp": ("gelu", "relu", "swiglu"),
        "attention": ("sdpa", "manual"),
    }
    POSITIVE: ClassVar[tuple[str, ...]] = (
        "vocab_size",
        "max_seq_len",
        "d_model",
        "n_layers",
        "n_heads",
        "rope_theta",
        "norm_eps",
        "mlp_hidden",
        "pad_vocab_multiple",
    )


@dataclass
class DataSection:
    """Where the tokens come from.

    `dir` holds a prepared dataset (train.bin, val.bin, meta.json). When it has none and
    `input` lists sources (files, folders, URLs), training prepares it first with
    `tokenizer` ("char", "bpe" with `vocab_size`, or the path of a saved tokenizer).
    """

    dir: str = "data/default"
    input: list[str] = field(default_factory=list)
    tokenizer: str = "char"
    vocab_size: int | None = None  # for tokenizer: bpe
    val_fraction: float = 0.1

    POSITIVE: ClassVar[tuple[str, ...]] = ("vocab_size",)


@dataclass
class OptimSection:
    """AdamW and the learning-rate schedule.

    schedule: "cosine" (linear warmup, cosine decay to min_lr), "wsd" (warmup, stable at lr,
    then a linear decay to min_lr over the last decay_fraction of the steps) or "constant"
    (warmup, then lr). decay_steps is the schedule's horizon (default: train.max_steps).
    """

    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 100
    schedule: str = "cosine"
    decay_steps: int | None = None
    decay_fraction: float = 0.2
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping (the norm is still logged)
    fused: bool | None = None  # None: fused AdamW on CUDA and CPU, the default elsewhere

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"schedule": ("cosine", "wsd", "constant")}
    POSITIVE: ClassVar[tuple[str, ...]] = ("lr", "decay_steps", "eps")
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = (
        "min_lr",
        "warmup_steps",
        "weight_decay",
        "grad_clip",
    )


@dataclass
class TrainSection:
    """How long, how big and where.

    The global batch is batch_size * grad_accum sequences per optimizer step, whatever the
    number of processes: under torchrun the accumulation steps (or, if they do not divide,
    the micro-batch) are split across ranks.
    """

    max_steps: int = 1000
    batch_size: int = 16  # sequences per micro-batch (single process)
    grad_accum: int = 1
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    peak_flops: float | None = None  # per device, for MFU; None: a default for the device

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "device": ("auto", "cpu", "cuda", "mps"),
        "precision": ("auto", "fp32", "bf16", "fp16"),
    }
    POSITIVE: ClassVar[tuple[str, ...]] = ("max_steps", "batch_size", "grad_accum", "peak_flops")


@dataclass
class LogSection:
    """What is printed and saved, and how often (in optimizer steps)."""

    log_interval: int = 10  # a metrics.csv row every N steps (and at eval steps)
    eval_interval: int = 250
    eval_batches: int = 20
    sample_interval: int = 500  # 0: never print samples during training
    sample_tokens: int = 200
    sample_prompt: str = "\n"
    checkpoint_interval: int = 500
    keep_last: int = 2
    progress: bool = True

    POSITIVE: ClassVar[tuple[str, ...]] = (
        "log_interval",
        "eval_interval",
        "eval_batches",
        "checkpoint_interval",
        "keep_last",
    )
    NON_NEGATIVE: ClassVar[tuple[str, ...]] = ("sample_interval", "sample_tokens")


@dataclass
class TrainConfig:
    """A whole training config: five typed sections."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    log: LogSection = field(default_factory=LogSection)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict, the form written to a run folder's config.yaml."""
        return {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def save(self, path: str | Path) -> None:
        """Write the resolved config as YAML (sections and keys in declaration order)."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def gpt_config(self, vocab_size: int | None = None) -> Any:
        """The gpt_core.GPTConfig this config describes (vocab from the argument if unset)."""
        from gpt_core import ConfigError, GPTConfig

        values = dataclasses.asdict(self.model)
        if values["vocab_size"] is None:
            values["vocab_size"] = vocab_size
        if values["vocab_size"] is None:
            raise TrainError("model.vocab_size is not set and no tokenizer gives one")
        try:
            return GPTConfig(**values)
        except ConfigError as exc:
            raise TrainError(f"model section: {exc}") from exc


SECTIONS: dict[str, type[Any]] = {
    "model": ModelSection,
    "data": DataSection,
    "optim": OptimSection,
    "train": TrainSection,
    "log": LogSection,
}


# ---------------------------------------------------------------------------------------------
# loading


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Read a YAML config (or start from the defaults), apply `section.key=value` overrides.

    `values` is an optional nested mapping applied after the file and before the overrides
    (used by tests and the benchmark). Raises TrainError naming the offending key.
    """
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    where = "config"
    if path is not None:
        where = str(path)
        p = Path(path)
        if not p.is_file():
            raise TrainError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise TrainError(f"{p}: not valid YAML: {exc}") from exc
        _merge(raw, loaded if loaded is not None else {}, where)
    if values is not None:
        _merge(raw, values, "values")
    for item in overrides:
        section, key, value = parse_override(item)
        raw[section][key] = value
    cfg = TrainConfig(
        **{name: _build_section(name, cls, raw[name], where) for name, cls in SECTIONS.items()}
    )
    _check_cross_fields(cfg)
    # GPTConfig owns the shape rules (head sizes, RoPE, ...): check them now, before any
    # work, with a stand-in vocabulary size when the real one comes from the tokenizer.
    cfg.gpt_config(vocab_size=cfg.model.vocab_size or 256)
    return cfg


def parse_override(item: str) -> tuple[str, str, Any]:
    """Split `section.key=value`; the value is parsed as YAML ("3" -> 3, "true" -> True)."""
    if "=" not in item:
        raise TrainError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. train.max_steps=200")
    dotted, text = item.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise TrainError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. train.max_steps=200")
    section, key = parts
    _check_section(section, f"--set {item}")
    _check_key(section, key, f"--set {item}")
    if typing.get_type_hints(SECTIONS[section])[key] is str:
        return section, key, text  # text fields take the text as typed ("ROMEO:" stays text)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return section, key, value


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_section(section: str, where: str) -> None:
    if section not in SECTIONS:
        raise TrainError(
            f"{where}: unknown section {section!r}{_suggest(section, list(SECTIONS))} "
            f"(allowed: {', '.join(SECTIONS)})"
        )


def _check_key(section: str, key: str, where: str) -> None:
    names = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key not in names:
        raise TrainError(
            f"{where}: unknown key '{section}.{key}'{_suggest(key, names)} "
            f"(allowed in {section}: {', '.join(names)})"
        )


def _merge(raw: dict[str, dict[str, Any]], loaded: Any, where: str) -> None:
    if not isinstance(loaded, Mapping):
        raise TrainError(f"{where}: expected a mapping of sections ({', '.join(SECTIONS)})")
    for section, body in loaded.items():
        _check_section(str(section), where)
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise TrainError(f"{where}: section '{section}' must be a mapping of key: value")
        for key, value in body.items():
            _check_key(str(section), str(key), where)
            raw[str(section)][str(key)] = value


def _build_section(name: str, cls: type[Any], values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        kwargs[key] = _coerce(f"{name}.{key}", value, hints[key], where)
    section = cls(**kwargs)
    _check_values(name, section, where)
    return section


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any, where: str) -> Any:
    """Check (and gently convert) one value against its annotated type."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0], where)
    bad = TrainError(f"{where}: {key} = {value!r} is not a valid {_type_name(tp)}")
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise bad
        return [_coerce(key, v, item_tp, where) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TrainError(f"{where}: {key} = {value!r} is not a valid bool (use true or false)")
    if tp is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                as_float = float(value)
            except ValueError:
                raise bad from None
            if as_float.is_integer():
                return int(as_float)
        raise bad
    if tp is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise bad
    raise bad  # pragma: no cover - every annotation above is handled


def _check_values(name: str, section: Any, where: str) -> None:
    choices: dict[str, tuple[str, ...]] = getattr(section, "CHOICES", {})
    for key, allowed in choices.items():
        value = getattr(section, key)
        if value not in allowed:
            raise TrainError(
                f"{where}: {name}.{key} = {value!r} is not allowed{_suggest(str(value), allowed)} "
                f"(allowed: {', '.join(allowed)})"
            )
    for key in getattr(section, "POSITIVE", ()):
        value = getattr(section, key)
        if value is not None and value <= 0:
            raise TrainError(f"{where}: {name}.{key} = {value!r} must be > 0")
    for key in getattr(section, "NON_NEGATIVE", ()):
        value = getattr(section, key)
        if value is not None and value < 0:
            raise TrainError(f"{where}: {name}.{key} = {value!r} must be >= 0")


def _check_cross_fields(cfg: TrainConfig) -> None:
    """Constraints that span keys; GPT shape rules are checked by GPTConfig itself."""
    o, d, m = cfg.optim, cfg.data, cfg.model
    if not 0.0 <= m.dropout < 1.0:
        raise TrainError(f"model.dropout = {m.dropout} must be in [0, 1)")
    if m.d_model % m.n_heads != 0:
        raise TrainError(
            f"model.d_model = {m.d_model} must be divisible by model.n_heads = {m.n_heads}"
        )
    if o.min_lr > o.lr:
        raise TrainError(f"optim.min_lr = {o.min_lr} must be <= optim.lr = {o.lr}")
    if not 0.0 < o.decay_fraction <= 1.0:
        raise TrainError(f"optim.decay_fraction = {o.decay_fraction} must be in (0, 1]")
    for key in ("beta1", "beta2"):
        if not 0.0 <= getattr(o, key) < 1.0:
            raise TrainError(f"optim.{key} = {getattr(o, key)} must be in [0, 1)")
    if not 0.0 < d.val_fraction < 1.0:
        raise TrainError(f"data.val_fraction = {d.val_fraction} must be in (0, 1)")
    if d.tokenizer == "bpe" and d.vocab_size is None and d.input:
        raise TrainError("data.tokenizer = 'bpe' needs data.vocab_size (e.g. 4096)")
    if d.tokenizer not in ("char", "bpe") and not d.tokenizer.endswith(".json"):
        raise TrainError(
            f"data.tokenizer = {d.tokenizer!r} is not allowed"
            f"{_suggest(d.tokenizer, ['char', 'bpe'])} "
            "(allowed: char, bpe, or the path of a saved tokenizer .json)"
        )
