"""The documents a dataset is made from: files, folders and URLs turned into local UTF-8 text.

A folder stands for the text files inside it (sorted, hidden ones skipped); a URL is
downloaded into the cache (`gpt_train.download`). HTML, local or downloaded, is reduced to
its visible text; a download whose Content-Type names a charset other than UTF-8 is
re-encoded as UTF-8. Converted text goes to files in a work folder the caller removes.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpt_train.download import (
    DEFAULT_TIMEOUT,
    check_charset,
    download,
    is_url,
    sha256_file,
    split_checksum,
)
from gpt_train.errors import TrainError
from gpt_train.htmltext import decode_html, html_to_text, looks_like_html

TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text", ".html", ".htm"}
_HTML_SUFFIXES = (".html", ".htm")


@dataclass
class Source:
    """One document: the input it came from and the local text file holding it."""

    origin: str  # what the user gave (path or URL)
    path: Path  # local UTF-8 text file (HTML already reduced to text)
    sha256: str  # of the original bytes (the downloaded or given file)
    kind: str  # "file" | "url"


def check_inputs(inputs: Sequence[str]) -> None:
    """Fail, before anything is written, on an input that cannot be used: a missing file,
    a folder without text files, a malformed #sha256= fragment. (URLs are fetched later.)"""
    if not inputs:
        raise TrainError("no input given: pass files, folders or http(s) URLs")
    for origin in inputs:
        if is_url(origin):
            split_checksum(origin)
        else:
            _local_files(origin)


def input_key(origin: str) -> str:
    """What identifies an input: a URL as written, a local path resolved, so that
    `names.txt`, `./names.txt` and its absolute path count as the same input."""
    return origin if is_url(origin) else str(Path(origin).expanduser().resolve())


def same_inputs(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether two input lists name the same documents in the same order."""
    return [input_key(o) for o in a] == [input_key(o) for o in b]


def resolve_sources(
    inputs: Sequence[str],
    work_dir: Path,
    cache_dir: Path | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Source]:
    """Expand files, folders (text files inside, sorted) and URLs into documents.

    `timeout` is the downloads' stall timeout in seconds.
    """
    check_inputs(inputs)
    sources: list[Source] = []
    for origin in inputs:
        if is_url(origin):
            sources.append(_from_url(origin, work_dir, cache_dir, progress, timeout))
        else:
            sources.extend(_from_file(f, work_dir) for f in _local_files(origin))
    return sources


def _local_files(origin: str) -> list[Path]:
    p = Path(origin).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        where = "" if p.is_absolute() else f"; relative to the current folder {Path.cwd()}"
        raise TrainError(f"input not found: {origin} (expected a file, folder or URL{where})")
    files = sorted(
        f
        for f in p.rglob("*")
        if f.is_file()
        and f.suffix.lower() in TEXT_SUFFIXES
        and not any(part.startswith(".") for part in f.relative_to(p).parts)
    )
    if not files:
        raise TrainError(
            f"input folder {p} holds no text files (looked for {', '.join(sorted(TEXT_SUFFIXES))})"
        )
    return files


def _from_file(path: Path, work_dir: Path) -> Source:
    text_path = path
    if path.suffix.lower() in _HTML_SUFFIXES:
        text_path = _html_text_file(path.read_bytes(), None, work_dir, path.stem)
    return Source(str(path), text_path, sha256_file(path), "file")


def _from_url(
    origin: str, work_dir: Path, cache_dir: Path | None, progress: bool, timeout: float
) -> Source:
    got = download(origin, cache_dir=cache_dir, progress=progress, timeout=timeout)
    with got.path.open("rb") as f:
        head = f.read(1024)
    if got.is_html or looks_like_html(head.decode("utf-8", errors="replace")):
        text = _html_text_file(got.path.read_bytes(), got.charset, work_dir, got.path.stem)
        return Source(origin, text, got.sha256, "url")
    text_path = got.path
    if got.charset is not None:
        encoding = check_charset(got.charset, got.url)
        if encoding not in ("utf-8", "ascii"):  # ASCII is UTF-8 already
            text_path = _transcode(got.path, encoding, work_dir, got.url)
    return Source(origin, text_path, got.sha256, "url")


def _work_file(work_dir: Path, stem: str) -> Path:
    work_dir.mkdir(parents=True, exist_ok=True)
    return work_dir / f"{len(list(work_dir.iterdir())):05d}-{stem[:60]}.txt"


def _html_text_file(raw: bytes, http_charset: str | None, work_dir: Path, stem: str) -> Path:
    out = _work_file(work_dir, stem)
    out.write_text(html_to_text(decode_html(raw, http_charset)), encoding="utf-8")
    return out


def _transcode(path: Path, encoding: str, work_dir: Path, where: str) -> Path:
    """A UTF-8 copy of the `encoding` text at `path`, converted in blocks (bounded memory)."""
    out = _work_file(work_dir, path.stem)
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as src, out.open("w", encoding="utf-8", newline="") as dst:
            while block := src.read(1 << 20):
                dst.write(decoder.decode(block))
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise TrainError(f"{where}: not {encoding} text as its Content-Type says ({exc})") from exc
    return out
