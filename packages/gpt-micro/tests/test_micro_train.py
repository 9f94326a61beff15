"""Char vocabulary, training on names, sampling, and the `microgpt` command."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpt_cli.microgpt import main
from gpt_micro.model import MicroConfig, MicroGPT
from gpt_micro.train import (
    DEFAULT_NAMES,
    CharVocab,
    MicroError,
    build_model,
    load_names,
    make_example,
    sample,
    train,
)


def test_shipped_names_list_is_clean() -> None:
    names = load_names()
    assert names == load_names(DEFAULT_NAMES)
    assert 300 <= len(names) <= 3000
    assert len(set(names)) == len(names)
    assert all(n.isalpha() and n.islower() for n in names)


def test_vocab_round_trip_and_bos() -> None:
    vocab = CharVocab.from_names(["ava", "bob"])
    assert vocab.chars == "abov"
    assert vocab.bos == 4
    assert vocab.size == 5
    ids = vocab.encode("bob")
    assert ids == [4, 1, 2, 1, 4]
    assert vocab.decode(ids) == "bob"
    with pytest.raises(MicroError, match="'z'"):
        vocab.encode("zoe")


def test_make_example_shifts_by_one_and_crops() -> None:
    assert make_example([9, 1, 2, 9], block_size=8) == ([9, 1, 2], [1, 2, 9])
    assert make_example([9, 1, 2, 3, 4, 9], block_size=3) == ([9, 1, 2], [1, 2, 3])


def test_empty_names_file_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "none.txt"
    f.write_text("\n  \n")
    with pytest.raises(MicroError, match=r"none\.txt: no names found"):
        load_names(f)


def test_attention_is_causal() -> None:
    """Logits at position t depend only on tokens 0..t."""
    model = MicroGPT(MicroConfig(vocab_size=5, block_size=6, n_embd=8, n_head=2))
    a = model.forward([0, 1, 2, 3])
    b = model.forward([0, 1, 4, 4])
    assert [v.data for v in a[1]] == [v.data for v in b[1]]
    assert [v.data for v in a[2]] != [v.data for v in b[2]]


def test_training_lowers_the_loss_and_sampling_is_reproducible() -> None:
    names = ["anna", "hannah", "ana", "nan", "hanna", "anahn"]
    vocab = CharVocab.from_names(names)
    model = build_model(vocab, seed=1, n_embd=8, n_head=2, block_size=8)
    seen: list[int] = []
    losses = train(
        model, vocab, names, steps=60, lr=2e-2, batch_size=2, on_step=lambda s, _: seen.append(s)
    )
    assert seen == list(range(60))
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10
    first = sample(model, vocab, 5, temperature=0.5, seed=3)
    assert first == sample(model, vocab, 5, temperature=0.5, seed=3)
    assert all(set(n) <= set("ahn") for n in first)


def test_bad_settings_are_clear_errors() -> None:
    vocab = CharVocab.from_names(["ab"])
    with pytest.raises(MicroError, match="divisible by n_head"):
        build_model(vocab, n_embd=10, n_head=4)
    model = build_model(vocab, n_embd=4, n_head=2)
    with pytest.raises(MicroError, match="temperature"):
        sample(model, vocab, 1, temperature=0.0)
    with pytest.raises(MicroError, match="steps"):
        train(model, vocab, ["ab"], steps=0)


def test_microgpt_command_trains_and_prints_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "names.txt"
    f.write_text("anna\nbob\nanne\nbobby\n")
    main(
        [
            "--names",
            str(f),
            "--steps",
            "4",
            "--log-every",
            "2",
            "--num-samples",
            "3",
            "--n-embd",
            "8",
            "--n-head",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert "4 names, vocab 7 (6 characters + BOS)" in out
    assert "step     4/4 | loss" in out
    assert out.rstrip().count("\n") >= 3 + 3  # header, 2 progress lines, banner, 3 names


def test_microgpt_command_reports_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--names", str(tmp_path / "missing.txt")])
    assert exc.value.code == 2
    assert "missing.txt" in capsys.readouterr().err
