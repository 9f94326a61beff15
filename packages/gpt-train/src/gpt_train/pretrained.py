"""`model.init_from`: start training from existing weights instead of random ones.

The source is a Hugging Face GPT-2 folder (config.json + model.safetensors, as
`save_pretrained` writes), a hub name (downloaded with huggingface_hub when it is installed),
or one of our runs (its run folder or a checkpoint folder). The model section is then read
from the weights: a value the user set that contradicts them is an error naming both, and
only the options that leave the weights unchanged (dropout, attention, and for GPT-2
folders pad_vocab_multiple) may still be chosen. The source's tokenizer comes along when
the data section does not name one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_core import GPT, GPTConfig
from gpt_core.interop import load_gpt2

from gpt_train import checkpoint as ckpt
from gpt_train.config import ModelSection, TrainConfig
from gpt_train.errors import TrainError
from gpt_train.runs import resolve_checkpoint

HUB_NAMES = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl")
_HUB_FILES = ["config.json", "model.safetensors", "tokenizer.json", "vocab.json", "merges.txt"]
# Fields that do not change the weights: the user's value wins over the source's.
_FREE_HF = ("dropout", "attention", "pad_vocab_multiple")
_FREE_OURS = ("dropout", "attention")


@dataclass
class Pretrained:
    """Loaded initial weights and where they came from."""

    model: GPT  # on the CPU, with the final config (free options applied)
    source: str  # as given in model.init_from
    tokenizer_path: Path | None  # the source's tokenizer file, usable as data.tokenizer


def _download(name: str) -> Path:
    """The local snapshot folder of hub model `name` (a one-line TrainError when impossible)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise TrainError(
            f"model.init_from = {name!r} is a Hugging Face hub name, which needs the "
            "huggingface_hub package (uv sync --group peers); or give a local GPT-2 folder"
        ) from None
    try:
        return Path(snapshot_download(name, allow_patterns=_HUB_FILES))
    except Exception as exc:  # offline, no such repo, network errors: all one message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason if len(reason) <= 160 else reason[:157].rstrip() + "..."
        raise TrainError(
            f"model.init_from = {name!r}: could not get it from the Hugging Face hub "
            f"({type(exc).__name__}: {reason}); when offline, give a local GPT-2 folder"
        ) from None


def _hf_tokenizer(folder: Path) -> Path | None:
    if (folder / "tokenizer.json").is_file():
        return folder / "tokenizer.json"
    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        return folder / "vocab.json"  # load_tokenizer reads merges.txt beside it
    return None


def _free(model: ModelSection, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(model, n) for n in names}


def _from_ours(path: Path, model: ModelSection) -> tuple[GPT, Path | None]:
    """Weights of our checkpoint folder `path`, and its run's tokenizer."""
    meta = ckpt.read_meta(path)
    try:
        config = GPTConfig.from_dict(meta["model_config"])
    except (KeyError, ValueError) as exc:
        raise TrainError(f"{path}/meta.json has no usable model_config: {exc}") from None
    gpt = GPT(dataclasses.replace(config, **_free(model, _FREE_OURS)))
    ckpt.load_weights(gpt, path)
    tokenizer = path.parent.parent / "tokenizer.json"
    return gpt, tokenizer if tokenizer.is_file() else None


def load_pretrained(model: ModelSection) -> Pretrained:
    """The weights `model.init_from` names, with the section's free options applied."""
    spec = model.init_from
    path = _download(spec) if spec in HUB_NAMES and not Path(spec).exists() else Path(spec)
    if (path / "config.json").is_file():
        return Pretrained(load_gpt2(path, **_free(model, _FREE_HF)), spec, _hf_tokenizer(path))
    if (path / "config.yaml").is_file():  # a run folder: its latest good checkpoint
        gpt, tok = _from_ours(resolve_checkpoint(path, "latest"), model)
        return Pretrained(gpt, spec, tok)
    if (path / "meta.json").is_file():
        ckpt.verify(path, resumable=False)
        gpt, tok = _from_ours(path, model)
        return Pretrained(gpt, spec, tok)
    if not path.exists():
        raise TrainError(
            f"model.init_from = {spec!r}: no such folder; expected scratch, a GPT-2 folder, "
            f"a hub name ({', '.join(HUB_NAMES)}), a run folder or a checkpoint folder"
        )
    raise TrainError(
        f"model.init_from = {spec!r} holds no config.json (GPT-2 folder), config.yaml (run "
        "folder) or meta.json (checkpoint folder)"
    )


def apply_init(cfg: TrainConfig) -> tuple[TrainConfig, Pretrained | None]:
    """`cfg` with its model section taken from model.init_from's weights, and those weights.

    A model value the user changed from its default that differs from the weights' value
    is a TrainError naming both. With no tokenizer set (data.tokenizer: char, the default),
    the source's tokenizer is used when it has one.
    """
    if cfg.model.init_from == "scratch":
        return cfg, None
    pre = load_pretrained(cfg.model)
    weights = pre.model.config
    defaults = ModelSection()
    for f in dataclasses.fields(GPTConfig):
        mine, theirs = getattr(cfg.model, f.name), getattr(weights, f.name)
        if mine != getattr(defaults, f.name) and mine != theirs:
            raise TrainError(
                f"model.{f.name} = {mine!r} contradicts the weights of model.init_from = "
                f"{pre.source!r}, which have {f.name} = {theirs!r}; remove model.{f.name}"
            )
    section = ModelSection(**dataclasses.asdict(weights), init_from=cfg.model.init_from)
    data = cfg.data
    if data.tokenizer == "char" and pre.tokenizer_path is not None:
        data = dataclasses.replace(data, tokenizer=str(pre.tokenizer_path))
    return dataclasses.replace(cfg, model=section, data=data), pre
