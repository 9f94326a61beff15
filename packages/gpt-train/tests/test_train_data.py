"""The data step before training: prepare when missing, describe once, refuse mismatches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gpt_core import GPTConfig
from gpt_train import TrainError
from gpt_train.config import DataSection
from gpt_train.data import Dataset, ensure_data
from gpt_train.distributed import DistInfo

TEXT = "first citizen: we are accounted poor citizens, the patricians good.\n" * 40


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "play.txt"
    path.write_text(TEXT)
    return path


def test_ensure_data_prepares_once_and_describes_the_folder(
    tmp_path: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    section = DataSection(dir=str(tmp_path / "data"), input=[str(source)])
    made = ensure_data(section, DistInfo(), progress=False)
    assert "preparing" in capsys.readouterr().out
    again = ensure_data(section, DistInfo(), progress=False)
    assert "preparing" not in capsys.readouterr().out  # already there: nothing redone
    assert made == again == Dataset.open(tmp_path / "data")
    assert made.vocab_size == len(set(TEXT)) + 1  # the characters and an end-of-text id
    assert made.inputs == (str(source),)
    assert made.tokenizer_path.is_file()
    train = made.tokens("train")
    assert train.dtype == np.uint16
    assert len(train) == made.train_tokens
    assert len(made.tokens("val")) == made.val_tokens


def test_a_folder_prepared_from_other_sources_is_refused(tmp_path: Path, source: Path) -> None:
    ensure_data(DataSection(dir=str(tmp_path / "d"), input=[str(source)]), DistInfo(), False)
    other = DataSection(dir=str(tmp_path / "d"), input=["elsewhere.txt"])
    with pytest.raises(TrainError, match=r"was prepared from .*play\.txt.*delete"):
        ensure_data(other, DistInfo(), progress=False)


def test_a_relative_and_an_absolute_path_are_the_same_input(
    tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configs/names.yaml names its input relative to the checkout, the tutorial absolutely."""
    monkeypatch.chdir(tmp_path)
    made = ensure_data(DataSection(dir="d", input=["play.txt"]), DistInfo(), False)
    for spelled in (str(source), "./play.txt", f"../{tmp_path.name}/play.txt"):
        again = ensure_data(DataSection(dir="d", input=[spelled]), DistInfo(), False)
        assert again == made
    with pytest.raises(TrainError, match=r"was prepared from"):  # the tokenizer still counts
        ensure_data(
            DataSection(dir="d", input=["play.txt"], tokenizer="bpe", vocab_size=300),
            DistInfo(),
            False,
        )


def test_no_data_and_no_input_says_how_to_make_some(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match=r"holds no prepared data and data\.input is empty"):
        ensure_data(DataSection(dir=str(tmp_path / "none")), DistInfo())


def test_the_model_takes_its_vocabulary_from_the_tokenizer(tmp_path: Path, source: Path) -> None:
    data = ensure_data(DataSection(dir=str(tmp_path / "d"), input=[str(source)]), DistInfo(), False)
    model = GPTConfig(d_model=32, n_heads=4)
    assert data.model_config(model).vocab_size == data.vocab_size
    padded = GPTConfig(vocab_size=data.vocab_size + 10, d_model=32, n_heads=4)
    assert data.model_config(padded) == padded  # a larger explicit vocabulary is kept
    with pytest.raises(TrainError, match="smaller than the tokenizer's vocabulary"):
        data.model_config(GPTConfig(vocab_size=3, d_model=32, n_heads=4))
