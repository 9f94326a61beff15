"""HF byte-level BPE files: our import encodes like HF `tokenizers` on the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpt_tokenizers import BPETokenizer, TokenizerError
from gpt_tokenizers.hf_files import import_hf_tokenizer, read_vocab_merges, write_hf_files

tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[3]
CORPORA = [ROOT / "corpora" / "tinyshakespeare.txt"] + [
    p
    for p in (Path("/work/shared/data") / n for n in ("gutenberg_40.txt", "names.txt"))
    if p.is_file()
]
EOT = "<|endoftext|>"
HELD_OUT = 200_000  # characters at the end of each corpus


@pytest.fixture(scope="module")
def hf_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ByteLevel BPE trained by HF `tokenizers`, saved as tokenizer.json and vocab+merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    out = tmp_path_factory.mktemp("hf")
    train_text = out / "train.txt"  # everything but the held-out end
    train_text.write_text(CORPORA[0].read_text(encoding="utf-8")[:-HELD_OUT], encoding="utf-8")
    tok.train([str(train_text)], trainer)
    train_text.unlink()
    tok.add_special_tokens([EOT])  # after training, like GPT-2: the last id
    tok.save(str(out / "tokenizer.json"))
    tok.model.save(str(out))  # vocab.json + merges.txt
    vocab = json.loads((out / "vocab.json").read_text())
    vocab[EOT] = tok.token_to_id(EOT)  # GPT-2's vocab.json lists it too
    (out / "vocab.json").write_text(json.dumps(vocab))
    return out


def _held_out(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[-HELD_OUT:]  # the end of each file, which the tokenizer was not trained on


@pytest.mark.parametrize("which", ["tokenizer.json", "vocab+merges"])
def test_import_encodes_like_hf(hf_files: Path, which: str) -> None:
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(hf_files / "tokenizer.json"))
    if which == "tokenizer.json":
        ours = import_hf_tokenizer(hf_files / "tokenizer.json")
    else:
        ours = read_vocab_merges(hf_files / "vocab.json", hf_files / "merges.txt")
        ours = BPETokenizer.from_dict(ours.to_dict())  # and through our JSON
    assert ours.special_tokens == {EOT: hf.token_to_id(EOT)}
    for path in CORPORA:
        text = _held_out(path)
        assert ours.encode(text) == hf.encode(text).ids, path.name
        assert ours.decode(ours.encode(text)) == text
    assert ours.encode(f"a{EOT}b", allowed_special="all") == hf.encode(f"a{EOT}b").ids


def test_export_loads_in_hf_and_encodes_alike(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    text = CORPORA[0].read_text(encoding="utf-8")
    ours = BPETokenizer.train(text[:100_000], 400, pattern="gpt4", special_tokens=[EOT])
    write_hf_files(ours, tmp_path)
    hf = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    sample = _held_out(CORPORA[-1])[:50_000] + " 12345 don't  \n\n x"
    assert hf.encode(sample).ids == ours.encode(sample)
    assert hf.decode(ours.encode(sample)) == sample
    assert hf.token_to_id(EOT) == ours.eot_id
    back = import_hf_tokenizer(tmp_path)
    assert back.encode(sample) == ours.encode(sample)


def test_gpt2_pattern_writes_vocab_and_merges(tmp_path: Path) -> None:
    ours = BPETokenizer.train(
        "hello world, hi there " * 50, 266, pattern="gpt2", special_tokens=[EOT]
    )
    names = sorted(p.name for p in write_hf_files(ours, tmp_path))
    assert names == ["merges.txt", "tokenizer.json", "vocab.json"]
    back = read_vocab_merges(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert back.encode("hello world") == ours.encode("hello world")
    assert back.special_tokens == ours.special_tokens


def test_bad_files_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"model": {"type": "WordPiece"}}')
    with pytest.raises(TokenizerError, match=r"tokenizer.json: 'model' must be a BPE"):
        import_hf_tokenizer(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no tokenizer\.json or vocab\.json"):
        import_hf_tokenizer(empty)
