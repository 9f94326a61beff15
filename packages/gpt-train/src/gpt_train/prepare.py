"""Turn text sources (files, folders, URLs) into token files a training run can memory-map.

Output folder:
    train.bin, val.bin   flat token ids, uint16 when the vocabulary fits (<= 65536) else uint32
    tokenizer.json       the tokenizer used (given, or trained here: char-level or BPE)
    meta.json            the description a training run reads (`gpt_train.data.Dataset`)

The folder is built under a temporary name beside the target and renamed into place when
complete (`gpt_tokenizers.atomic.atomic_path`): a failed or interrupted prepare leaves the
previous dataset as it was. A target folder holding other files than these is refused.

Each source file is one document. The split is per document: its first (1 - val_fraction)
of bytes (moved to the next line break) go to train, the rest to val, so both splits see
every source. Every document part is followed by the tokenizer's end-of-text id (when it
has one), which lets the model learn where documents stop. Files are read and tokenized in
chunks of about `chunk_bytes`, cut at line breaks, so memory stays bounded for any corpus.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from gpt_tokenizers import BPETokenizer, CharTokenizer, Tokenizer, load_tokenizer
from gpt_tokenizers.atomic import OLD_PREFIX, TEMP_PREFIX, atomic_path
from tqdm import tqdm

from gpt_train.download import DEFAULT_TIMEOUT
from gpt_train.errors import TrainError
from gpt_train.sources import Source, check_inputs, resolve_sources

EOT_TEXT = "<|endoftext|>"
META_VERSION = 1
# What prepare writes in a dataset folder; a folder holding anything else is not replaced.
DATASET_FILES = ("meta.json", "tokenizer.json", "train.bin", "val.bin")
_OWN_LEFTOVERS = (TEMP_PREFIX, OLD_PREFIX, ".html-text")  # of earlier, killed versions


def token_dtype(vocab_size: int) -> np.dtype[Any]:
    """uint16 when every id fits (vocab <= 65536), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def _chunks(
    path: Path, start: int, end: int, chunk_bytes: int, origin: str | None = None
) -> Iterator[str]:
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
                raise TrainError(f"{origin or path}: not UTF-8 text ({exc})") from exc
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
    given = _given_tokenizer(spec, vocab_size)
    if given is not None:
        return given
    if spec == "char":
        chars: set[str] = set()
        for src in sources:
            size = src.path.stat().st_size
            for piece in _chunks(src.path, 0, size, chunk_bytes, src.origin):
                chars.update(piece)
        if not chars:
            raise TrainError("the inputs hold no text to build a character vocabulary from")
        return CharTokenizer.from_text("".join(sorted(chars)), eos=True)  # eos ends documents
    assert vocab_size is not None  # checked by _given_tokenizer
    if progress:
        print(f"training a BPE tokenizer (vocab {vocab_size}) on {len(sources)} file(s)")
    return BPETokenizer.train_files(
        [str(s.path) for s in sources],
        vocab_size=vocab_size,
        special_tokens=[EOT_TEXT],
        verbose=progress,
    )


def _given_tokenizer(spec: str, vocab_size: int | None) -> Tokenizer | None:
    """Check a tokenizer spec before any work: the loaded tokenizer for a file, None for
    "char" / "bpe" (built from the sources later)."""
    if spec == "char":
        return None
    if spec == "bpe":
        if vocab_size is None:
            raise TrainError("a BPE tokenizer needs a vocabulary size (--vocab-size N)")
        if vocab_size < 257:
            raise TrainError(
                f"vocab size {vocab_size}: a byte-level BPE needs at least 257 "
                "(256 bytes and <|endoftext|>)"
            )
        return None
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
    download_timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Prepare `out_dir` from `inputs`; returns the meta.json contents.

    Every argument and input is checked first. The dataset is then built in a temporary
    folder beside `out_dir` and renamed into place once complete, so an error or Ctrl-C at
    any point leaves an earlier dataset there byte for byte. `download_timeout` is the
    seconds a download may go without receiving a byte.
    """
    if not 0.0 < val_fraction < 1.0:
        raise TrainError(f"val fraction must be in (0, 1), got {val_fraction}")
    if not download_timeout > 0:
        raise TrainError(f"download timeout must be positive seconds, got {download_timeout}")
    out = Path(out_dir)
    # The folder is swapped by name in its parent: ".", "a/.." or a symlink name the real one.
    target = out.resolve() if out.is_symlink() else Path(os.path.abspath(out))
    if not target.name or Path.cwd().is_relative_to(target):
        raise TrainError(
            f"output {out} is (or holds) the current folder, which prepare would replace "
            "whole; name a subfolder or run from elsewhere"
        )
    tidy_leftovers(target)
    given = _given_tokenizer(tokenizer, vocab_size)
    check_inputs(inputs)
    _check_target(out)
    t0 = time.perf_counter()
    with atomic_path(target) as tmp:
        tmp.mkdir()
        work = tmp / ".html-text"
        try:
            sources = resolve_sources(inputs, work, cache_dir, progress, download_timeout)
            tok = given or build_tokenizer(tokenizer, sources, vocab_size, chunk_bytes, progress)
            tok.save(tmp / "tokenizer.json")
            meta = _write_tokens(tok, sources, tmp, val_fraction, chunk_bytes, progress)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        meta.update(
            tokenizer_spec=tokenizer if tokenizer in ("char", "bpe") else str(Path(tokenizer)),
            inputs=list(inputs),
            seconds=round(time.perf_counter() - t0, 2),
        )
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _check_target(out: Path) -> None:
    """`out` must be missing, an empty folder or a dataset folder (only files prepare
    writes): replacing it must not delete anything a user put there."""
    if out.exists() and not out.is_dir():
        raise TrainError(f"output {out} is a file; give a folder (new, empty or a dataset)")
    if not out.is_dir():
        return
    foreign = sorted(
        p.name
        for p in out.iterdir()
        if p.name not in DATASET_FILES and not p.name.startswith(_OWN_LEFTOVERS)
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise TrainError(
            f"output folder {out} holds files prepare did not write ({shown}); preparing "
            "replaces the whole folder, so move them out or choose another output folder"
        )


def tidy_leftovers(out_dir: str | Path) -> None:
    """Tidy what a prepare of `out_dir` killed midway left beside it: a dataset moved aside
    whose replacement never arrived is put back, half-built folders are deleted."""
    out = Path(out_dir)
    if not out.parent.is_dir():
        return
    for p in out.parent.iterdir():
        prefix = next((x for x in (TEMP_PREFIX, OLD_PREFIX) if p.name.startswith(x)), None)
        if prefix is None:
            continue
        name, _, pid = p.name[len(prefix) :].rpartition("-")
        if name != out.name or not pid.isdigit() or _running(int(pid)):
            continue  # another target's, or a prepare still at work
        if prefix == OLD_PREFIX and not out.exists():
            os.replace(p, out)
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    """Whether another process with this id exists (ours never counts: it is starting over)."""
    if pid == os.getpid():
        return False
    if os.name == "nt":  # signal 0 means Ctrl-C there: assume running, touch nothing
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


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
    with ExitStack() as stack:  # `out` is the temporary dataset folder
        bar = stack.enter_context(
            tqdm(total=total, desc="tokenize", unit="B", unit_scale=True, disable=not progress)
        )
        writers = {}
        for name in ("train", "val"):
            file = stack.enter_context((out / f"{name}.bin").open("wb"))
            writers[name] = _TokenWriter(file, dtype)
        for src in sources:
            size = src.path.stat().st_size
            split = _split_point(src.path, val_fraction)
            counts = {}
            for name, (a, b) in (("train", (0, split)), ("val", (split, size))):
                before = writers[name].count
                for piece in _chunks(src.path, a, b, chunk_bytes, src.origin):
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
