"""`prepare`: files, folders and URLs (served from 127.0.0.1) into token files + meta.json."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gpt_tokenizers import CharTokenizer, TokenizerError, load_tokenizer
from gpt_train import TrainError
from gpt_train.htmltext import html_to_text
from gpt_train.prepare import prepare_data, token_dtype

PAGE = b"""<!DOCTYPE html><html><head><title>T</title><style>p {color: red}</style>
<script>var hidden = "do not keep";</script></head>
<body><h1>Sonnet</h1><p>Shall I compare thee&nbsp;to a summer&#39;s day?</p>
<div>Thou art more <b>lovely</b> and more temperate.</div></body></html>"""
PLAIN = b"To be, or not to be, that is the question.\n" * 40


class _Server:
    """A throwaway HTTP server on 127.0.0.1 serving fixed bodies and counting requests."""

    def __init__(self) -> None:
        self.bodies = {"/sonnet.html": (PAGE, "text/html"), "/hamlet.txt": (PLAIN, "text/plain")}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if self.path not in server.bodies:
                    self.send_error(404)
                    return
                body, ctype = server.bodies[self.path]
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _tokens(data_dir: Path, split: str) -> np.ndarray:
    meta = json.loads((data_dir / "meta.json").read_text())
    return np.fromfile(data_dir / f"{split}.bin", dtype=np.dtype(meta["dtype"]))


def test_files_and_folders_become_documents_split_by_eot(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("first document line one\nline two\n" * 20)
    (docs / "sub" / "b.md").write_text("second document here\n" * 20)
    (docs / "skip.bin").write_bytes(b"\x00\x01")  # not a text suffix: ignored in folders
    (docs / ".hidden.txt").write_text("hidden")
    single = tmp_path / "c.txt"
    single.write_text("third one\n" * 30)

    meta = prepare_data([str(docs), str(single)], tmp_path / "out", progress=False)
    tok = load_tokenizer(tmp_path / "out" / "tokenizer.json")
    assert [s["source"] for s in meta["sources"]] == [
        str(docs / "a.txt"), str(docs / "sub" / "b.md"), str(single)
    ]  # fmt: skip
    assert meta["sources"][0]["sha256"] == hashlib.sha256((docs / "a.txt").read_bytes()).hexdigest()
    train, val = _tokens(tmp_path / "out", "train"), _tokens(tmp_path / "out", "val")
    assert meta["train_tokens"] == len(train)
    assert meta["val_tokens"] == len(val)
    assert tok.eot_id is not None
    # every document's part ends with the end-of-text id: 3 in each split
    assert (train == tok.eot_id).sum() == 3
    assert (val == tok.eot_id).sum() == 3
    text = tok.decode([int(i) for i in train if i != tok.eot_id])
    assert text.startswith("first document line one\n")
    assert "second document here" in text
    assert "hidden" not in text
    # the val part of a document is its tail, cut at a line break
    val_docs = tok.decode([int(i) for i in val]).split("\n")
    assert val_docs[0] in ("first document line one", "line two")


def test_chunked_streaming_gives_the_same_tokens(tmp_path: Path, repo_root: Path) -> None:
    src = tmp_path / "s.txt"
    src.write_bytes((repo_root / "corpora" / "tinyshakespeare.txt").read_bytes()[:50_000])
    prepare_data([str(src)], tmp_path / "big", progress=False)
    prepare_data([str(src)], tmp_path / "small", progress=False, chunk_bytes=97)
    for split in ("train", "val"):
        assert np.array_equal(_tokens(tmp_path / "big", split), _tokens(tmp_path / "small", split))


def test_uint16_when_the_vocab_fits_else_uint32(tmp_path: Path) -> None:
    assert token_dtype(65536) == np.uint16
    assert token_dtype(65537) == np.uint32
    # a character vocabulary of 70,000 distinct characters does not fit in uint16
    chars = [chr(c) for c in range(0x100, 0x100 + 72_000) if not 0xD800 <= c <= 0xDFFF][:70_000]
    tok = CharTokenizer.from_text("".join(chars) + "\n", eos=True)
    tok.save(tmp_path / "wide.json")
    text = tmp_path / "t.txt"
    text.write_text("".join(chars[-10:]) + "\n" + "".join(chars[:10]) + "\n")
    meta = prepare_data([str(text)], tmp_path / "out", tokenizer=str(tmp_path / "wide.json"),
                        val_fraction=0.5, progress=False)  # fmt: skip
    assert meta["dtype"] == "uint32"
    ids = _tokens(tmp_path / "out", "train")
    assert ids.max() >= 65536
    assert tok.decode([int(i) for i in ids[:10]]) == "".join(chars[-10:])
    small = prepare_data([str(text)], tmp_path / "o2", val_fraction=0.5, progress=False)
    assert small["dtype"] == "uint16"


def test_bpe_tokenizer_is_trained_when_asked(tmp_path: Path, repo_root: Path) -> None:
    src = tmp_path / "s.txt"
    src.write_bytes((repo_root / "corpora" / "tinyshakespeare.txt").read_bytes()[:30_000])
    meta = prepare_data([str(src)], tmp_path / "out", tokenizer="bpe", vocab_size=300,
                        progress=False)  # fmt: skip
    assert meta["vocab_size"] == 300
    assert meta["tokenizer_type"] == "BPETokenizer"
    assert meta["train_tokens"] < 0.9 * len(src.read_text())  # merges compress


def test_url_download_html_to_text_cache_and_sha256(tmp_path: Path, server: _Server) -> None:
    cache = tmp_path / "cache"
    good = hashlib.sha256(PLAIN).hexdigest()
    urls = [f"{server.url}/sonnet.html", f"{server.url}/hamlet.txt#sha256={good}"]
    meta = prepare_data(urls, tmp_path / "out", cache_dir=cache, progress=False)
    assert [s["kind"] for s in meta["sources"]] == ["url", "url"]
    assert meta["sources"][1]["sha256"] == good
    tok = load_tokenizer(tmp_path / "out" / "tokenizer.json")
    both = tok.decode([int(i) for i in _tokens(tmp_path / "out", "train")])
    both += tok.decode([int(i) for i in _tokens(tmp_path / "out", "val")])
    assert "Shall I compare thee to a summer's day?" in both
    assert "hidden" not in both
    assert "color" not in both
    assert "<p>" not in both
    # a second run reuses the cache: no new request
    prepare_data(urls, tmp_path / "out2", cache_dir=cache, progress=False)
    assert server.hits == {"/sonnet.html": 1, "/hamlet.txt": 1}


def test_sha256_mismatch_and_missing_url_fail_clearly(tmp_path: Path, server: _Server) -> None:
    bad = "0" * 64
    with pytest.raises(TrainError, match=f"sha256 mismatch: expected {bad}"):
        prepare_data([f"{server.url}/hamlet.txt#sha256={bad}"], tmp_path / "o",
                     cache_dir=tmp_path / "c", progress=False)  # fmt: skip
    assert not list((tmp_path / "c").glob("*hamlet*"))  # nothing bad left in the cache
    with pytest.raises(TrainError, match="could not download"):
        prepare_data([f"{server.url}/missing.txt"], tmp_path / "o", cache_dir=tmp_path / "c",
                     progress=False)  # fmt: skip
    with pytest.raises(TrainError, match="input not found"):
        prepare_data([str(tmp_path / "nope.txt")], tmp_path / "o", progress=False)


def test_html_to_text_keeps_only_visible_text() -> None:
    text = html_to_text(PAGE.decode())  # <head> (title, style, script) is not page text
    assert [line for line in text.splitlines() if line] == [
        "Sonnet",
        "Shall I compare thee to a summer's day?",
        "Thou art more lovely and more temperate.",
    ]


def test_progress_bars_on_stderr_unless_quiet(
    tmp_path: Path, server: _Server, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "s.txt"
    src.write_bytes(PLAIN)
    url = f"{server.url}/hamlet.txt"
    prepare_data([str(src), url], tmp_path / "out", cache_dir=tmp_path / "c", progress=True)
    err = capsys.readouterr().err
    assert "download hamlet.txt: 100%" in err
    assert "tokenize: 100%" in err
    prepare_data([str(src), url], tmp_path / "out2", cache_dir=tmp_path / "c2", progress=False)
    assert capsys.readouterr().err == ""


def _hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder` (and of every name beside it: no leftovers)."""
    files = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip
    return {**files, "beside": ",".join(sorted(p.name for p in folder.parent.iterdir()))}


class _Interrupted(CharTokenizer):
    """A tokenizer that is Ctrl-C'd on its third piece of text (train.bin half written)."""

    calls = 0

    def encode_ordinary(self, text: str) -> list[int]:
        type(self).calls += 1
        if type(self).calls == 3:
            raise KeyboardInterrupt
        return self.encode(text)


@pytest.mark.parametrize(
    "failure", ["bad input", "bad vocab", "bad tokenizer", "fails midway", "ctrl-c", "bad url"]
)
def test_a_failed_reprepare_leaves_the_dataset_byte_identical(
    tmp_path: Path, server: _Server, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "data" / "set"
    src = tmp_path / "s.txt"
    src.write_text("abc abc abc\n" * 50 + "xyz\n")
    prepare_data([str(src)], out, progress=False)
    before = _hashes(out)
    narrow = tmp_path / "narrow.json"
    CharTokenizer.from_text("abc \n").save(narrow)  # fails on the 'x' near the end
    (tmp_path / "broken.json").write_text("{not json")
    cases: dict[str, tuple[dict[str, Any], type[BaseException]]] = {
        "bad input": ({"inputs": [str(src), str(tmp_path / "typo.txt")]}, TrainError),
        "bad vocab": ({"tokenizer": "bpe", "vocab_size": 100}, TrainError),
        "bad tokenizer": ({"tokenizer": str(tmp_path / "broken.json")}, TokenizerError),
        "fails midway": ({"tokenizer": str(narrow), "chunk_bytes": 64}, TokenizerError),
        "ctrl-c": (
            {"tokenizer": str(tmp_path / "wide.json"), "chunk_bytes": 64},
            KeyboardInterrupt,
        ),
        "bad url": ({"inputs": [str(src), f"{server.url}/missing.txt"]}, TrainError),
    }
    kwargs, expected = cases[failure]
    if failure == "ctrl-c":
        _Interrupted.from_text("abcxyz \n", eos=True).save(tmp_path / "wide.json")
        monkeypatch.setattr("gpt_train.prepare.load_tokenizer", _Interrupted.load)
    with pytest.raises(expected):
        prepare_data(**{"inputs": [str(src)], "out_dir": out, "progress": False,
                        "cache_dir": tmp_path / "c", **kwargs})  # fmt: skip
    assert _hashes(out) == before


def test_a_reprepare_replaces_the_dataset_whole(tmp_path: Path) -> None:
    out = tmp_path / "d"
    src = tmp_path / "s.txt"
    src.write_text("abc abc abc\n" * 50)
    prepare_data([str(src)], out, progress=False)
    src.write_text("xyz xyz\n" * 80)
    meta = prepare_data([str(src)], out, progress=False)
    assert json.loads((out / "meta.json").read_text()) == meta
    assert load_tokenizer(out / "tokenizer.json").decode([int(i) for i in _tokens(out, "val")])
    assert sorted(p.name for p in out.iterdir()) == [
        "meta.json", "tokenizer.json", "train.bin", "val.bin"
    ]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "s.txt"]  # no temporaries


def test_an_output_that_is_a_file_or_holds_other_files_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "s.txt"
    src.write_text("abc abc abc\n" * 50)
    file = tmp_path / "notes.md"
    file.write_text("mine")
    with pytest.raises(TrainError, match=f"output {file} is a file"):
        prepare_data([str(src)], file, progress=False)
    assert file.read_text() == "mine"
    out = tmp_path / "d"
    prepare_data([str(src)], out, progress=False)
    (out / "my-notes.txt").write_text("keep me")
    before = _hashes(out)
    with pytest.raises(TrainError, match=r"holds files prepare did not write \(my-notes.txt\)"):
        prepare_data([str(src)], out, progress=False)
    assert _hashes(out) == before


def test_the_current_folder_as_output_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Swapping the folder a shell stands in would leave that shell in a deleted folder."""
    src = tmp_path / "s.txt"
    src.write_text("abc abc abc\n" * 50)
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path / "d")
    for out in (".", "../d", ".."):
        with pytest.raises(TrainError, match=f"output {re.escape(out)} is .or holds. the current"):
            prepare_data([str(src)], out, progress=False)
    prepare_data([str(src)], "sub", progress=False)  # a subfolder is fine
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["sub"]


def test_the_dataset_behind_a_symlink_is_replaced_in_place(tmp_path: Path) -> None:
    src = tmp_path / "s.txt"
    src.write_text("abc abc abc\n" * 50)
    (tmp_path / "disk").mkdir()
    link = tmp_path / "d"
    link.symlink_to(tmp_path / "disk" / "set", target_is_directory=True)
    prepare_data([str(src)], link, progress=False)
    prepare_data([str(src)], link, progress=False)
    assert link.is_symlink()
    assert (tmp_path / "disk" / "set" / "meta.json").is_file()


def test_what_a_killed_prepare_left_is_tidied(tmp_path: Path) -> None:
    """A kill between moving the old dataset aside and renaming the new one into place
    leaves .old-NAME-PID (and a half-built .tmp-NAME-PID); the next prepare puts the old
    dataset back before anything else, even when it then fails on its inputs."""
    src = tmp_path / "s.txt"
    src.write_text("abc abc abc\n" * 50)
    prepare_data([str(src)], tmp_path / "d", progress=False)
    before = _hashes(tmp_path / "d")
    dead = (1 << 22) + 1  # above the largest pid_max Linux allows: no such process
    (tmp_path / "d").rename(tmp_path / f".old-d-{dead}")
    (tmp_path / f".tmp-d-{dead}").mkdir()
    (tmp_path / f".tmp-d-{dead}" / "train.bin").write_bytes(b"half")
    (tmp_path / f".tmp-other-{dead}").mkdir()  # another target's: left alone
    with pytest.raises(TrainError, match="input not found"):
        prepare_data([str(tmp_path / "typo.txt")], tmp_path / "d", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".tmp-other-{dead}", "d", "s.txt"]
    before["beside"] = _hashes(tmp_path / "d")["beside"]
    assert _hashes(tmp_path / "d") == before
