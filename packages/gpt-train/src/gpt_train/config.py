"""Training configuration: a YAML file mapped onto typed dataclasses, with `--set` overrides.

A config has five sections. `model` is gpt_core's GPTConfig itself (its `vocab_size` may
stay empty: the data's tokenizer fills it in); `data`, `optim`, `train` and `log` are the
dataclasses below. Every rule lives in a field's type, as in GPTConfig: `Literal` choices
and `Bound` limits, checked by gpt_core's `check_fields`, plus a few cross-field rules in
`__post_init__`. pydantic reads the YAML values into those types ("3e-4" becomes a float),
and any problem is one TrainError line naming the file, `section.key`, the value and what
is allowed, with a close match for a misspelt name. All of it happens before any data is
read or any model is built.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from gpt_core.config import (
    Bound,
    ConfigError,
    Count,
    Fraction,
    GPTConfig,
    NonNegative,
    Positive,
    PositiveFloat,
    check_fields,
    check_value,
    suggest,
)
from gpt_tokenizers.atomic import write_text_atomic
from pydantic import BeforeValidator, TypeAdapter, ValidationError

from gpt_train.errors import TrainError


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value  # `input: a.txt` means [a.txt]


@dataclass(frozen=True)
class ModelSection(GPTConfig):
    """The `model` section: gpt_core's GPTConfig plus where the initial weights come from.

    init_from: "scratch" (random weights), a Hugging Face GPT-2 folder, a hub name (gpt2,
    gpt2-medium, gpt2-large, gpt2-xl) or one of our run folders / checkpoint folders. With
    weights, the architecture is read from them (gpt_train.pretrained). `gpt_config()` is
    the model's own config, without this training-only key.
    """

    init_from: str = "scratch"

    def gpt_config(self) -> GPTConfig:
        """The GPTConfig this section describes (init_from dropped)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(GPTConfig)}
        return GPTConfig(**fields)


@dataclass(frozen=True)
class DataSection:
    """Where the tokens come from.

    `dir` holds a prepared dataset (train.bin, val.bin, meta.json). When it has none and
    `input` lists sources (files, folders, URLs), training prepares it first with
    `tokenizer` ("char", "bpe" with `vocab_size`, or the path of a saved tokenizer).
    """

    dir: str = "data/default"  # the prepared data folder
    input: Annotated[list[str], BeforeValidator(_as_list)] = field(default_factory=list)
    tokenizer: str = "char"  # char | bpe | path/to/tokenizer.json
    vocab_size: Positive | None = None  # for tokenizer: bpe
    val_fraction: Annotated[float, Bound(gt=0, lt=1)] = 0.1  # of each document's bytes

    def __post_init__(self) -> None:
        check_fields(self)
        if self.tokenizer not in ("char", "bpe") and not self.tokenizer.endswith(".json"):
            raise ConfigError(
                f"tokenizer = {self.tokenizer!r} is not allowed"
                f"{suggest(self.tokenizer, ['char', 'bpe'])}; "
                "allowed: char, bpe, or the path of a saved tokenizer .json",
                field="tokenizer",
            )
        if self.tokenizer == "bpe" and self.vocab_size is None and self.input:
            raise ConfigError("tokenizer = 'bpe' needs vocab_size (e.g. 4096)", field="tokenizer")


@dataclass(frozen=True)
class OptimSection:
    """The optimizer (AdamW, or Muon with AdamW) and the learning-rate schedule.

    schedule: "cosine" (linear warmup, cosine decay to min_lr), "wsd" (warmup, stable at lr,
    then a linear decay to min_lr over the last decay_fraction of the steps) or "constant"
    (warmup, then lr). decay_steps is the schedule's horizon (default: train.max_steps).
    """

    lr: PositiveFloat = 1e-3  # peak learning rate
    min_lr: NonNegative = 1e-4  # the floor the decay ends at
    warmup_steps: Count = 100  # linear warmup from lr/warmup_steps
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    decay_steps: Positive | None = None  # None: train.max_steps
    decay_fraction: Annotated[float, Bound(gt=0, le=1)] = 0.2  # wsd: the decaying tail
    weight_decay: NonNegative = 0.1  # on matrices only (see optim.py)
    beta1: Fraction = 0.9
    beta2: Fraction = 0.95
    eps: PositiveFloat = 1e-8
    grad_clip: NonNegative = 1.0  # 0 disables clipping (the norm is still logged)
    fused: bool | None = None  # None: fused AdamW on CUDA and CPU, the default elsewhere
    # adamw: AdamW everywhere; muon: torch.optim.Muon on the blocks' 2-D matrices, AdamW on
    # embeddings, norms, biases and the head (gpt_train.optim.MuonAdamW).
    name: Literal["adamw", "muon"] = "adamw"
    muon_lr_scale: PositiveFloat = 1.0  # Muon's lr = the schedule's lr x this
    muon_momentum: Fraction = 0.95

    def __post_init__(self) -> None:
        check_fields(self)
        if self.min_lr > self.lr:
            raise ConfigError(f"min_lr = {self.min_lr} must be <= lr = {self.lr}", field="min_lr")


@dataclass(frozen=True)
class TrainSection:
    """How long, how big and where.

    The global batch is batch_size * grad_accum sequences per optimizer step, whatever the
    number of processes: under torchrun the accumulation steps (or, if they do not divide,
    the micro-batch) are split across ranks.
    """

    max_steps: Positive = 1000  # optimizer steps
    batch_size: Positive = 16  # sequences per micro-batch (single process)
    grad_accum: Positive = 1  # micro-batches per optimizer step
    seed: int = 1337  # initial weights and data order
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False  # torch.compile the model
    peak_flops: PositiveFloat | None = None  # per device, for MFU; None: a default
    threads: Positive | None = None  # torch CPU threads (see threads.py); None: torch's default

    def __post_init__(self) -> None:
        check_fields(self)


BACKENDS = ("csv", "tensorboard", "wandb")  # log.backends choices (gpt_train.dashboards)


@dataclass(frozen=True)
class LogSection:
    """What is printed and saved, and how often (in optimizer steps)."""

    log_interval: Positive = 10  # a metrics.csv row every N steps (and at eval steps)
    eval_interval: Positive = 250
    eval_batches: Positive = 20  # val loss = mean over this many fixed batches
    sample_interval: Count = 500  # 0: never print samples during training
    sample_tokens: Count = 200
    sample_prompt: str = "\n"
    checkpoint_interval: Positive = 500
    keep_last: Positive = 2  # step checkpoints kept (best/ is extra)
    progress: bool = True  # the progress bar
    explain_steps: Count = 0  # print a look inside the first N steps (train --explain N)
    explain_interval: Count = 0  # and inside every N-th step after them (0: never)
    # Where each metrics row goes besides metrics.csv (always written: the source of truth).
    backends: Annotated[list[str], BeforeValidator(_as_list)] = field(
        default_factory=lambda: ["csv"]
    )
    wandb_project: str = "gptkit"  # the W&B project of backend wandb

    def __post_init__(self) -> None:
        check_fields(self)
        for name in self.backends:
            if name not in BACKENDS:
                raise ConfigError(
                    f"backends = {self.backends!r}: {name!r} is not one of {', '.join(BACKENDS)}"
                    + suggest(str(name), list(BACKENDS)),
                    field="backends",
                )
        # csv first and always; each backend once, in the order given.
        object.__setattr__(self, "backends", list(dict.fromkeys(["csv", *self.backends])))


@dataclass(frozen=True)
class TrainConfig:
    """A whole training config: the model (a GPTConfig + init_from) and four more sections."""

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
        write_text_atomic(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


SECTIONS: dict[str, type[Any]] = typing.get_type_hints(TrainConfig)
_ADAPTER = TypeAdapter(TrainConfig)


class _Loader(yaml.SafeLoader):
    """YAML that reads 3e-4 and 1e4 as numbers (YAML 1.1 wants a dot: 3.0e-4) and refuses a
    key given twice in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise TrainError(f"line {line}: {key!r} appears twice; give it once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Read a YAML config (or start from the defaults), apply `section.key=value` overrides.

    `values` is an optional nested mapping applied after the file and before the overrides
    (used by tests and the benchmark). Raises TrainError naming the offending key; the
    sweep validates a trial the same way, by loading its overrides.
    """
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    where = "config" if path is None else str(path)
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise TrainError(f"config file not found: {p}")
        try:
            loaded = yaml.load(p.read_text(), Loader=_Loader)
        except yaml.YAMLError as exc:
            raise TrainError(f"{p}: not valid YAML: {exc}") from exc
        except TrainError as exc:  # a key given twice
            raise TrainError(f"{p}: {exc}") from None
        _merge(raw, loaded if loaded is not None else {}, where)
    if values is not None:
        _merge(raw, values, "values")
    for item in overrides:
        section, key, value = parse_override(item)
        raw[section][key] = value
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise TrainError(f"{where}: {_describe(exc, raw)}") from None


def parse_override(item: str) -> tuple[str, str, Any]:
    """Split `section.key=value`; the value is parsed as YAML ("3" -> 3, "true" -> True)."""
    dotted, sep, text = item.partition("=")
    parts = dotted.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise TrainError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. train.max_steps=200")
    section, key = parts
    _check_key(section, key, f"--set {item}")
    if _unwrap(typing.get_type_hints(SECTIONS[section])[key]) is str:
        return section, key, text  # text fields take the text as typed ("ROMEO:" stays text)
    try:
        value = yaml.load(text, Loader=_Loader) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return section, key, value


def _unwrap(hint: Any) -> Any:
    """The plain type under Annotated[...] and `X | None`."""
    if typing.get_origin(hint) is Annotated:
        return _unwrap(typing.get_args(hint)[0])
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return _unwrap(args[0]) if type(None) in typing.get_args(hint) and len(args) == 1 else hint


def _check_key(section: str, key: str | None, where: str) -> None:
    if section not in SECTIONS:
        raise TrainError(
            f"{where}: unknown section {section!r}{suggest(section, list(SECTIONS))}; "
            f"allowed: {', '.join(SECTIONS)}"
        )
    names = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key is not None and key not in names:
        raise TrainError(
            f"{where}: unknown key '{section}.{key}'{suggest(key, names)}; "
            f"allowed in {section}: {', '.join(names)}"
        )


def _merge(raw: dict[str, dict[str, Any]], loaded: Any, where: str) -> None:
    if not isinstance(loaded, Mapping):
        raise TrainError(f"{where}: expected a mapping of sections ({', '.join(SECTIONS)})")
    for section, body in loaded.items():
        _check_key(str(section), None, where)
        if body is None:
            continue
        if not isinstance(body, Mapping):
            raise TrainError(f"{where}: section '{section}' must be a mapping of key: value")
        for key, value in body.items():
            _check_key(str(section), str(key), where)
            raw[str(section)][str(key)] = value


def _describe(exc: ValidationError, raw: dict[str, dict[str, Any]]) -> str:
    """The first validation problem as `section.key = value <rule>`, in gpt_core's words."""
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # raised by a section's own checks
        return f"{loc[0]}.{cause}" if cause.field else f"{loc[0]}: {cause}"
    section, key = loc[0], loc[1] if len(loc) > 1 else ""
    hint = typing.get_type_hints(SECTIONS[section], include_extras=True).get(key)
    if hint is not None and key in raw.get(section, {}):
        try:  # the same check GPTConfig runs, for the same message
            check_value(key, raw[section][key], hint)
        except ConfigError as err:
            return f"{section}.{err}"
    return f"{'.'.join(loc)} = {error['input']!r}: {error['msg']}"
