"""The prepared dataset a run trains on: made ready once, then described by one dataclass.

`ensure_data` is the step before training: it checks that `data.dir` holds a prepared
dataset, prepares it from `data.input` (on rank 0 only) when it does not, and returns a
`Dataset`, built from meta.json read once. Everything downstream (the samplers, the model's
vocabulary size, the run summary) reads that description instead of the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gpt_core import GPTConfig

from gpt_train import distributed
from gpt_train.config import DataSection
from gpt_train.distributed import DistInfo
from gpt_train.errors import TrainError
from gpt_train.prepare import prepare_data, read_meta, tidy_leftovers
from gpt_train.sources import same_inputs


@dataclass(frozen=True)
class Dataset:
    """A prepared data folder: train.bin / val.bin token files and their tokenizer."""

    dir: Path
    vocab_size: int  # of the tokenizer (the model's vocabulary when model.vocab_size is empty)
    dtype: str  # of the token files: uint16 or uint32
    train_tokens: int
    val_tokens: int
    tokenizer_path: Path  # tokenizer.json inside dir
    eot_id: int | None  # the end-of-text id ending every document, if the tokenizer has one
    inputs: tuple[str, ...]  # the sources it was prepared from
    tokenizer_spec: str | None  # char | bpe | a tokenizer path, as given when preparing

    @classmethod
    def from_meta(cls, data_dir: str | Path, meta: dict[str, Any]) -> Dataset:
        """The description of `data_dir` from its meta.json contents."""
        folder = Path(data_dir)
        return cls(
            dir=folder,
            vocab_size=int(meta["vocab_size"]),
            dtype=str(meta["dtype"]),
            train_tokens=int(meta["train_tokens"]),
            val_tokens=int(meta["val_tokens"]),
            tokenizer_path=folder / str(meta.get("tokenizer", "tokenizer.json")),
            eot_id=meta.get("eot_id"),
            inputs=tuple(meta.get("inputs", ())),
            tokenizer_spec=meta.get("tokenizer_spec"),
        )

    @classmethod
    def open(cls, data_dir: str | Path) -> Dataset:
        """Read `data_dir`/meta.json (a clear TrainError when the folder is not prepared)."""
        return cls.from_meta(data_dir, read_meta(data_dir))

    def tokens(self, split: str) -> np.memmap[Any, np.dtype[Any]]:
        """The flat token array of `split` ("train" | "val"), memory-mapped read-only."""
        path = self.dir / f"{split}.bin"
        if not path.is_file():
            raise TrainError(f"{path} is missing; prepare the data folder again")
        return np.memmap(path, dtype=np.dtype(self.dtype), mode="r")

    def model_config(self, model: GPTConfig) -> GPTConfig:
        """`model` with vocab_size taken from the tokenizer when it was left empty."""
        if model.vocab_size is None:
            return dataclasses.replace(model, vocab_size=self.vocab_size)
        if model.vocab_size < self.vocab_size:
            raise TrainError(
                f"model.vocab_size = {model.vocab_size} is smaller than the tokenizer's "
                f"vocabulary ({self.vocab_size}); leave it empty"
            )
        return model


def ensure_data(data: DataSection, info: DistInfo, progress: bool = True) -> Dataset:
    """The prepared dataset of `data.dir`, preparing it (on rank 0) from data.input if missing."""
    folder = Path(data.dir)
    if info.is_main:
        tidy_leftovers(folder.absolute())  # put back what a killed prepare moved aside
    distributed.barrier(info)
    if (folder / "meta.json").is_file():
        dataset = Dataset.open(folder)
        same = same_inputs(dataset.inputs, data.input)
        if data.input and not (same and dataset.tokenizer_spec == data.tokenizer):
            raise TrainError(
                f"data.dir {folder} was prepared from {list(dataset.inputs)} with tokenizer "
                f"{dataset.tokenizer_spec!r}, not from data.input {data.input} with "
                f"{data.tokenizer!r}; delete {folder} or set another data.dir"
            )
        return dataset
    if not data.input:
        raise TrainError(
            f"data.dir {folder} holds no prepared data and data.input is empty; run "
            "`uv run prepare --input ... --out DIR` or list sources in data.input"
        )
    meta: dict[str, Any] | None = None
    if info.is_main:
        print(f"preparing {folder} from {', '.join(data.input)} (tokenizer: {data.tokenizer})")
        meta = prepare_data(
            data.input,
            folder,
            tokenizer=data.tokenizer,
            vocab_size=data.vocab_size,
            val_fraction=data.val_fraction,
            progress=progress,
        )
        print(
            f"prepared {meta['train_tokens']:,} train and {meta['val_tokens']:,} val tokens "
            f"(vocab {meta['vocab_size']}) in {meta['seconds']}s"
        )
    distributed.barrier(info)  # the other ranks read what rank 0 wrote
    return Dataset.from_meta(folder, meta) if meta is not None else Dataset.open(folder)
