"""Turn text sources (files, folders, URLs) into token files a training run can memory-map.

Output folder:
    train.bin, val.bin   flat token ids, uint16 when the vocabulary fits (<= 65536) else uint32
    tokenizer.json       the tokenizer used (given, or trained here: char-level or BPE)
    meta.json            written last, so its presence means the folder is complete

Each source file is one document. The split is per document: its first (1 - val_fraction)
of bytes (moved to the next line break) go to train, the rest to val, so both splits see
every source. Every document part is followed by the tokenizer's end-of-text id (when it
has one), which lets the model learn where documents stop. Files are read and tokenized in
chunks of about `chunk_bytes`, cut at line breaks, so memory stays bounded for any corpus.
"""

from __future__ import annotations

import codecs
import json
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from gpt_tokenizers import BPETokenizer, CharTokenizer, Tokenizer, load_tokenizer
from gpt_tokenizers.atomic import atomic_path, write_text_atomic
from tqdm import tqdm

from gpt_train.download import download, is_url, sha256_file
from gpt_train.errors import TrainError
from gpt_train.htmltext import html_to_text, looks_like_html

TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text", ".html", ".htm"}
EOT_TEXT = "<|endoftext|>"
META_VERSION = 1


@dataclass
class Source:
    """One document: the input it came from and the local text file holding it."""

    origin: str  # what the user gave (path or URL)
    path: Path  # local plain-text file (HTML already reduced to text)
    sha256: str  # of the original bytes (the downloaded or given file)
    kind: str  # "file" | "url"


def token_dtype(vocab_size: int) -> np.dtype[Any]:
    """uint16 when every id fits (vocab <= 65536), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def resolve_sources(
    inputs: Sequence[str],
    work_dir: Path,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> list[Source]:
    """Expand files, folders (text files inside, sorted) and URLs into documents."""
    if not inputs:
        raise TrainError("no input given: pass files, folders or http(s) URLs")
    sources: list[Source] = []
    for origin in inputs:
        if is_url(origin):
            got = download(origin, cache_dir=cache_dir, progress=progress)
            text_path = got.path
            head = got.path.read_bytes()[:1024].decode("utf-8", errors="replace")
            if got.is_html or looks_like_html(head):
                text_path = _html_file_to_text(got.path, work_dir)
            sources.append(Source(origin, text_path, got.sha256, "url"))
            continue
        p = Path(origin).expanduser()
        if p.is_dir():
            files = sorted(
                f
                for f in p.rglob("*")
                if f.is_file()
                and f.suffix.lower() in TEXT_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            if not files:
                raise TrainError(
                    f"input folder {p} holds no text files "
                    f"(looked for {', '.join(sorted(TEXT_SUFFIXES))})"
                )
            sources.extend(_local(f, work_dir) for f in files)
        elif p.is_file():
            sources.append(_local(p, work_dir))
        else:
            raise TrainError(f"input not found: {origin} (expected a file, folder or URL)")
    return sources


def _local(path: Path, work_dir: Path) -> Source:
    digest = sha256_file(path)
    text_path = path
    if path.suffix.lower() in (".html", ".htm"):
        text_path = _html_file_to_text(path, work_dir)
    return Source(str(path), text_path, digest, "file")


def _html_file_to_text(path: Path, work_dir: Path) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / f"{len(list(work_dir.iterdir())):05d}-{path.stem[:60]}.txt"
    raw = path.read_bytes().decode("utf-8", errors="replace")
    out.write_text(html_to_text(raw), encoding="utf-8")
    return out


def _chunks(path: Path, start: int, end: int, chunk_bytes: int) -> Iterator[str]:
    """Decoded text of bytes [start, end) in pieces cut after a line break when possible
    (so a tokenizer rarely sees a word split across two pieces)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        f.seek(start)
        pos, carry = start, ""
        while pos < end:
            block = f.read(min(chunk_bytes, end - pos))
            if not block:
                break
            pos += len(block)
            try:
                text = carry + decoder.decode(block, final=pos >= end)
            except UnicodeDecodeError as exc:
                raise TrainError(f"{path}: not UTF-8 text ({exc})") from exc
            cut = text.rfind("\n") + 1 if pos < end else len(text)
            if cut == 0:
                cut = len(text)
            piece, carry = text[:cut], text[cut:]
            if piece:
                yield piece
        if carry:
            yield carry


def _split_point(path: Path, val_fraction: float) -> int:
    """Byte offset where the document's val part starts: after the line break nearest the
    (1 - val_fraction) mark, or at the mark (moved off a UTF-8 continuation byte)."""
    size = path.stat().st_size
    target = int(size * (1.0 - val_fraction))
    with path.open("rb") as f:
        f.seek(target)
        window = f.read(1 << 16)
    nl = window.find(b"\n")
    if nl >= 0:
        return target + nl + 1
    i = 0
    while i < len(window) and (window[i] & 0xC0) == 0x80:
        i += 1
    return min(size, target + i)


def build_tokenizer(
    spec: str,
    sources: Sequence[Source],
    vocab_size: int | None,
    chunk_bytes: int = 1 << 20,
    progress: bool = True,
) -> Tokenizer:
    """A tokenizer from `spec`: "char" (from the sources' characters), "bpe" (trained on the
    sources to `vocab_size`) or the path of a saved tokenizer JSON."""
    if spec == "char":
        chars: set[str] = set()
        for src in sources:
            size = src.path.stat().st_size
            for piece in _chunks(src.path, 0, size, chunk_bytes):
                chars.update(piece)
        if not chars:
            raise TrainError("the inputs hold no text to build a character vocabulary from")
        return CharTokenizer.from_text("".join(sorted(chars)), eos=True)  # eos ends documents
    if spec == "bpe":
        if vocab_size is None:
            raise TrainError("a BPE tokenizer needs a vocabulary size (--vocab-size N)")
        if progress:
            print(f"training a BPE tokenizer (vocab {vocab_size}) on {len(sources)} file(s)")
        return BPETokenizer.train_files(
            [str(s.path) for s in sources],
            vocab_size=vocab_size,
            special_tokens=[EOT_TEXT],
            verbose=progress,
        )
    path = Path(spec)
    if not path.is_file():
        raise TrainError(f"tokenizer file not found: {spec} (or use 'char' / 'bpe')")
    return load_tokenizer(path)


class _TokenWriter:
    """Append token ids to an open file, counting them."""

    def __init__(self, file: BinaryIO, dtype: np.dtype[Any]) -> None:
        self.file = file
        self.dtype = dtype
        self.count = 0

    def write(self, ids: Sequence[int]) -> None:
        if ids:
            arr = np.asarray(ids, dtype=np.int64)
            self.file.write(arr.astype(self.dtype).tobytes())
            self.count += len(arr)


def prepare_data(
    inputs: Sequence[str],
    out_dir: str | Path,
    tokenizer: str = "char",
    vocab_size: int | None = None,
    val_fraction: float = 0.1,
    cache_dir: Path | None = None,
    progress: bool = True,
    chunk_bytes: int = 1 << 20,
) -> dict[str, Any]:
    """Prepare `out_dir` from `inputs`; returns the meta.json contents."""
    if not 0.0 < val_fraction < 1.0:
        raise TrainError(f"val fraction must be in (0, 1), got {val_fraction}")
    if tokenizer == "bpe" and vocab_size is not None and vocab_size < 257:
        raise TrainError(
            f"vocab size {vocab_size}: a byte-level BPE needs at least 257 "
            "(256 bytes and <|endoftext|>)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)  # the folder is incomplete until the end
    work = out / ".html-text"
    t0 = time.perf_counter()
    try:
        sources = resolve_sources(inputs, work, cache_dir=cache_dir, progress=progress)
        tok = build_tokenizer(tokenizer, sources, vocab_size, chunk_bytes, progress)
        tok.save(out / "tokenizer.json")
        meta = _write_tokens(tok, sources, out, val_fraction, chunk_bytes, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta.update(
        tokenizer_spec=tokenizer if tokenizer in ("char", "bpe") else str(Path(tokenizer)),
        inputs=list(inputs),
        seconds=round(time.perf_counter() - t0, 2),
    )
    write_text_atomic(out / "meta.json", json.dumps(meta, indent=2) + "\n")
    return meta


def _write_tokens(
    tok: Tokenizer,
    sources: Sequence[Source],
    out: Path,
    val_fraction: float,
    chunk_bytes: int,
    progress: bool,
) -> dict[str, Any]:
    vocab = int(tok.vocab_size)
    dtype = token_dtype(vocab)
    eot = tok.eot_id
    encode = getattr(tok, "encode_ordinary", tok.encode)  # literal "<|endoftext|>" is text
    total = sum(s.path.stat().st_size for s in sources)
    records = []
    # Each .bin is written beside its final name and renamed into place once complete, so
    # an error or a kill never leaves half a file; meta.json, written after both, is what
    # says the pair belongs together.
    with ExitStack() as stack:
        bar = stack.enter_context(
            tqdm(total=total, desc="tokenize", unit="B", unit_scale=True, disable=not progress)
        )
        writers = {}
        for name in ("train", "val"):
            tmp = stack.enter_context(atomic_path(out / f"{name}.bin"))
            writers[name] = _TokenWriter(stack.enter_context(tmp.open("wb")), dtype)
        for src in sources:
            size = src.path.stat().st_size
            split = _split_point(src.path, val_fraction)
            counts = {}
            for name, (a, b) in (("train", (0, split)), ("val", (split, size))):
                before = writers[name].count
                for piece in _chunks(src.path, a, b, chunk_bytes):
                    writers[name].write(encode(piece))
                    bar.update(len(piece.encode("utf-8")))
                if b > a and eot is not None:
                    writers[name].write([eot])
                counts[name] = writers[name].count - before
            records.append(
                {
                    "source": src.origin,
                    "kind": src.kind,
                    "sha256": src.sha256,
                    "bytes": size,
                    "train_tokens": counts["train"],
                    "val_tokens": counts["val"],
                }
            )
    if writers["train"].count < 2 or writers["val"].count < 2:
        raise TrainError(
            f"too little text: {writers['train'].count} train and {writers['val'].count} val "
            "tokens (need at least a few windows of each; add text or change the val fraction)"
        )
    return {
        "version": META_VERSION,
        "tokenizer": "tokenizer.json",
        "tokenizer_type": type(tok).__name__,
        "vocab_size": vocab,
        "eot_id": eot,
        "dtype": dtype.name,
        "train_tokens": writers["train"].count,
        "val_tokens": writers["val"].count,
        "val_fraction": val_fraction,
        "split": "per document: the first (1 - val_fraction) of its bytes to train, rest to val",
        "sources": records,
    }


def read_meta(data_dir: str | Path) -> dict[str, Any]:
    """meta.json of a prepared folder, with a clear error when it is not one."""
    path = Path(data_dir) / "meta.json"
    if not path.is_file():
        raise TrainError(
            f"{data_dir} is not a prepared data folder (no meta.json); "
            "run `uv run prepare --input ... --out DIR` or set data.input"
        )
    meta: dict[str, Any] = json.loads(path.read_text())
    return meta
