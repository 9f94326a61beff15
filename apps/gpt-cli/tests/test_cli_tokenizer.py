"""`tokenizer train|encode|decode|show`, run in-process through main()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpt_cli.tokenizer import main
from gpt_tokenizers import BPETokenizer, CharTokenizer, load_tokenizer

TEXT = "To be, or not to be, that is the question: 👋 naïve.\n" * 30


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _train(corpus: Path, out: Path, *extra: str) -> None:
    main(["train", "--input", str(corpus), "--out", str(out), "--quiet", *extra])


def _trained(corpus: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Path:
    """A tokenizer trained on `corpus` into tok.json beside it, its output discarded."""
    out = corpus.with_name("tok.json")
    _train(corpus, out, *extra)
    capsys.readouterr()
    return out


def test_train_encode_decode(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tok.json"
    _train(corpus, out, "--vocab-size", "280", "--special-token", "<|endoftext|>")
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed
    assert "vocab size 280" in printed
    tok = load_tokenizer(out)
    assert isinstance(tok, BPETokenizer)
    assert tok.eot_id == 279

    main(["encode", "--tokenizer", str(out), "--text", "not to be 👋"])
    ids = [int(x) for x in capsys.readouterr().out.split()]
    assert ids == tok.encode("not to be 👋")

    main(["decode", "--tokenizer", str(out), "--ids", " ".join(map(str, ids))])
    assert capsys.readouterr().out == "not to be 👋\n"
    main(["decode", "--tokenizer", str(out), "--ids", json.dumps(ids)])
    assert capsys.readouterr().out == "not to be 👋\n"


def test_encode_special_tokens_and_files(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _trained(corpus, capsys, "--vocab-size", "280", "--special-token", "<|endoftext|>")
    with pytest.raises(SystemExit) as exc:
        main(["encode", "--tokenizer", str(out), "--text", "a<|endoftext|>"])
    assert exc.value.code == 2
    assert "special token '<|endoftext|>'" in capsys.readouterr().err
    ids_file = tmp_path / "ids.json"
    main(
        [
            "encode",
            "--tokenizer",
            str(out),
            "--text",
            "a<|endoftext|>",
            "--allow-special",
            "--json",
            "--out",
            str(ids_file),
        ]
    )
    assert json.loads(ids_file.read_text())[-1] == 279
    main(["decode", "--tokenizer", str(out), "--input", str(ids_file)])
    assert capsys.readouterr().out.endswith("a<|endoftext|>\n")


def test_decode_split_character_strict(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _trained(corpus, capsys, "--vocab-size", "260")
    main(["decode", "--tokenizer", str(out), "--ids", "240 159"])
    assert "\ufffd" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["decode", "--tokenizer", str(out), "--ids", "240 159", "--strict"])
    assert "UTF-8" in capsys.readouterr().err


def test_show_marks_boundaries(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _trained(corpus, capsys, "--vocab-size", "280")
    main(["show", "--tokenizer", str(out), "--text", "to be 👋", "--no-color"])
    lines = capsys.readouterr().out.splitlines()
    tok = BPETokenizer.load(out)
    n = len(tok.encode("to be 👋"))
    assert lines[0].replace("|", "") == "to be 👋"
    # A character split over several tokens is shown whole, in one span.
    assert "\ufffd" not in lines[0]
    assert any(span.endswith("👋") for span in lines[0].split("|"))
    assert lines[1] == f"7 characters, 10 bytes, {n} tokens: {10 / n:.2f} bytes per token"
    main(["show", "--tokenizer", str(out), "--text", "to be"])
    assert "\x1b[" in capsys.readouterr().out


def test_char_and_word(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "char.json"
    _train(corpus, out, "--kind", "char", "--eos")
    tok = load_tokenizer(out)
    assert isinstance(tok, CharTokenizer)
    assert tok.eot_id == tok.vocab_size - 1
    word = tmp_path / "word.json"
    _train(corpus, word, "--kind", "word", "--vocab-size", "8")
    capsys.readouterr()
    main(["encode", "--tokenizer", str(word), "--text", "to be"])
    assert len(capsys.readouterr().out.split()) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "--input", "missing.txt", "--vocab-size", "300", "--out", "x.json"],
            "not found",
        ),
        (["train", "--input", "CORPUS", "--vocab-size", "10", "--out", "x.json"], "at least 256"),
        (["train", "--input", "CORPUS", "--out", "x.json"], "needs a vocabulary size"),
        (["encode", "--tokenizer", "missing.json", "--text", "hi"], "tokenizer file not found"),
        (["decode", "--tokenizer", "TOK", "--ids", "1 x"], "expected integer ids"),
        (["decode", "--tokenizer", "TOK", "--ids", "99999"], "unknown token id 99999"),
        (["encode", "--tokenizer", "CORPUS", "--text", "hi"], "not valid JSON"),
    ],
)
def test_user_errors_are_one_line(
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    tok = _trained(corpus, capsys, "--vocab-size", "260")
    argv = [str(corpus) if a == "CORPUS" else str(tok) if a == "TOK" else a for a in argv]
    argv = [str(tmp_path / a) if a.endswith(("x.json", "missing.txt")) else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err


def test_train_shows_progress_unless_quiet(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tok.json"
    main(["train", "--input", str(corpus), "--out", str(out), "--vocab-size", "270"])
    captured = capsys.readouterr()
    assert "counting chunks: 100%" in captured.err
    assert "merges: 100%" in captured.err
    assert "counting" not in captured.out  # stdout keeps only the summary
    _train(corpus, out, "--vocab-size", "270", "--overwrite")
    assert capsys.readouterr().err == ""


def test_existing_outputs_are_kept_unless_overwrite(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tok_path = _trained(corpus, capsys, "--vocab-size", "270", "--pattern", "gpt2")
    kept = tmp_path / "kept.txt"
    kept.write_text("the user's own file\n")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "vocab.json").write_text("{}")  # e.g. a model folder's own tokenizer files
    tok, export = ["--tokenizer", str(tok_path)], ["--format", "hf", "--out", str(folder)]
    refused = [
        ["train", "--input", str(corpus), "--vocab-size", "270", "--quiet", "--out", str(kept)],
        ["import", "--from", str(tok_path), "--out", str(kept)],
        ["encode", *tok, "--text", "hi", "--out", str(kept)],
        ["export", *tok, *export],
    ]
    for argv in refused:
        with pytest.raises(SystemExit):
            main(argv)
        err = capsys.readouterr().err
        assert err.count("\n") == 1, argv
        assert "--overwrite" in err, argv
    assert "model already holds vocab.json;" in err
    assert kept.read_text() == "the user's own file\n"
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"vocab.json": "{}"}

    main(["export", *tok, *export, "--overwrite"])
    assert {p.name for p in folder.iterdir()} == {"tokenizer.json", "vocab.json", "merges.txt"}
    main(["encode", *tok, "--text", "hi", "--out", str(kept), "--overwrite"])
    assert kept.read_text() != "the user's own file\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "--tokenizer", "TOK", "--text", "a\udc80b"], "--text: character 1"),
        (["encode", "--tokenizer", "TOK", "--text", "\udcff"], "--text: character 0"),
        (["show", "--tokenizer", "TOK", "--input", "BAD"], "BAD: not valid UTF-8 at byte 1"),
        (["decode", "--tokenizer", "TOK", "--input", "BAD"], "BAD: not valid UTF-8 at byte 1"),
        (["train", "--kind", "char", "--input", "BAD", "--out", "x.json"], "BAD: not valid UTF-8"),
        (
            ["train", "--kind", "word", "--input", "BAD", "--vocab-size", "9", "--out", "x.json"],
            "BAD: not valid UTF-8 at byte 1",
        ),
        (
            ["train", "--input", "BAD", "--vocab-size", "260", "--out", "x.json", "--quiet"],
            "BAD: not valid UTF-8 at byte 1",
        ),
    ],
)
def test_text_that_is_not_utf8_is_a_one_line_error(
    corpus: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    tok = _trained(corpus, capsys, "--vocab-size", "260")
    bad = tmp_path / "not_utf8.txt"
    bad.write_bytes("a\udc80b".encode("utf-8", "surrogatepass"))  # a lone surrogate, encoded
    names = {"TOK": str(tok), "BAD": str(bad), "x.json": str(tmp_path / "x.json")}
    with pytest.raises(SystemExit) as exc:
        main([names.get(a, a) for a in argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message.replace("BAD", str(bad)) in err
    assert "expected" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("fmt", ["hf", "tiktoken"])
def test_export_then_import_round_trips(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    tok_path = _trained(
        corpus,
        capsys,
        "--vocab-size",
        "290",
        "--pattern",
        "gpt2",
        "--special-token",
        "<|endoftext|>",
    )
    ours = BPETokenizer.load(tok_path)
    main(["export", "--tokenizer", str(tok_path), "--format", fmt, "--out", str(tmp_path / "out")])
    assert "wrote" in capsys.readouterr().out
    if fmt == "hf":
        names = {"tokenizer.json", "vocab.json", "merges.txt"}
        source, extra = tmp_path / "out", []
    else:
        names = {"tokenizer.tiktoken", "tiktoken.json"}
        info = json.loads((tmp_path / "out" / "tiktoken.json").read_text())
        assert info["pat_str"] == ours.pattern
        specials = [f"{k}={v}" for k, v in info["special_tokens"].items()]
        source = tmp_path / "out" / "tokenizer.tiktoken"
        extra = ["--pattern", "gpt2", *(x for s in specials for x in ("--special-token", s))]
    assert {p.name for p in (tmp_path / "out").iterdir()} == names
    back_path = tmp_path / "back.json"
    main(["import", "--from", str(source), "--out", str(back_path), *extra])
    assert f"wrote {back_path}" in capsys.readouterr().out
    back = BPETokenizer.load(back_path)
    assert back.encode(TEXT) == ours.encode(TEXT)
    special = "a<|endoftext|>"
    assert back.encode(special, allowed_special="all") == ours.encode(
        special, allowed_special="all"
    )


def test_export_of_a_char_tokenizer_is_one_line_error(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tok_path = _trained(corpus, capsys, "--kind", "char")
    with pytest.raises(SystemExit):
        main(["export", "--tokenizer", str(tok_path), "--format", "hf", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert "needs a BPE tokenizer" in err
    assert err.count("\n") == 1
