"""Download text sources over http(s) with a progress bar, a cache and sha256 checks.

A URL may carry its expected checksum as a fragment, `https://host/file.txt#sha256=<hex>`
(fragments are never sent to the server). Files are cached under `cache_dir` (default
$GPTKIT_CACHE_DIR or ~/.cache/gptkit/downloads) by a hash of the URL, written to a temporary
name and renamed (`gpt_tokenizers.atomic`), so an interrupted download never looks complete.

What counts as a complete download: a body with a Content-Length must have exactly that many
bytes, a chunked body must end with its last chunk, and a gzip / deflate body must end its
compressed stream. Anything shorter is an error and nothing is cached. A transfer that brings
no byte for `timeout` seconds (the "stall timeout") is an error too. The cache keeps the
decoded bytes (after Content-Encoding) and, beside them in `<file>.content-type`, the
server's Content-Type, whose charset the caller uses to read the text.
"""

from __future__ import annotations

import codecs
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import BinaryIO

from gpt_tokenizers.atomic import atomic_path, write_text_atomic
from tqdm import tqdm

from gpt_train.errors import TrainError

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
DEFAULT_TIMEOUT = 60.0  # seconds without a byte before a transfer counts as stalled
_BLOCK = 1 << 16


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def default_cache_dir() -> Path:
    env = os.environ.get("GPTKIT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "gptkit" / "downloads"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def split_checksum(url: str) -> tuple[str, str | None]:
    """`url#sha256=HEX` -> (url, hex); a URL without that fragment -> (url, None)."""
    base, _, frag = url.partition("#")
    if frag.startswith("sha256="):
        digest = frag[len("sha256=") :].lower()
        if not _SHA_RE.match(digest):
            raise TrainError(f"{url}: sha256 fragment must be 64 hex digits, got {digest!r}")
        return base, digest
    return url, None


def attach_checksums(inputs: Sequence[str], digests: Sequence[str]) -> list[str]:
    """`inputs` with the i-th digest attached to the i-th URL as `#sha256=HEX`; files are
    left as they are. There must be one digest per URL, or none at all."""
    out = list(inputs)
    if not digests:
        return out
    urls = [i for i, s in enumerate(out) if is_url(s)]
    if len(digests) != len(urls):
        raise TrainError(f"{len(digests)} --sha256 value(s) for {len(urls)} URL input(s)")
    for i, digest in zip(urls, digests, strict=True):
        out[i] = f"{out[i].split('#')[0]}#sha256={digest.lower()}"
    return out


def charset_of(content_type: str) -> str | None:
    """The `charset=` parameter of a Content-Type header value, lower-cased, if any."""
    msg = Message()
    msg["Content-Type"] = content_type
    charset = msg.get_param("charset")
    return charset.strip().lower() if isinstance(charset, str) and charset.strip() else None


def check_charset(name: str, where: str) -> str:
    """`name` as Python's codec name (e.g. latin-1 -> iso8859-1), or a one-line error."""
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise TrainError(f"{where}: unknown charset {name!r}") from None


@dataclass
class Downloaded:
    """A fetched URL: where it is cached, its checksum and what the server said it is."""

    url: str
    path: Path  # the body, Content-Encoding already undone
    sha256: str  # of the bytes at `path`
    is_html: bool
    charset: str | None = None  # from the Content-Type header; None when it named none


def _describe(url: str, path: Path, digest: str, ctype: str) -> Downloaded:
    is_html = "html" in ctype.lower() or path.name.lower().endswith((".html", ".htm"))
    return Downloaded(url, path, digest, is_html, charset_of(ctype))


def _cached_type(path: Path) -> str:
    """The Content-Type saved beside a cached file (older caches kept one only for HTML)."""
    for sidecar in (path.name + ".content-type", path.name + ".html"):
        if (p := path.with_name(sidecar)).is_file():
            return p.read_text(encoding="utf-8")
    return ""


def download(
    url: str,
    cache_dir: Path | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Downloaded:
    """Fetch `url` into the cache (reusing a cached copy) and verify its sha256 if given.

    `timeout` is the stall timeout: the most seconds to wait for the connection or for the
    next bytes of the body.
    """
    if not timeout > 0:
        raise TrainError(f"download timeout must be a positive number of seconds, got {timeout}")
    url, frag_sha = split_checksum(url)
    expected = (sha256 or frag_sha or "").lower() or None
    if expected is not None and not _SHA_RE.match(expected):
        raise TrainError(f"{url}: sha256 must be 64 hex digits, got {expected!r}")
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or "index.html"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80]
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    path = cache / f"{key}-{safe}"
    sidecar = path.with_name(path.name + ".content-type")

    if path.exists():
        digest = sha256_file(path)
        if expected is None or digest == expected:
            return _describe(url, path, digest, _cached_type(path))
        path.unlink()  # a stale or corrupt cached copy: fetch again

    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    try:
        with atomic_path(path) as tmp, urllib.request.urlopen(request, timeout=timeout) as resp:
            ctype = resp.headers.get("Content-Type", "")
            with tmp.open("wb") as f:
                digest = _copy_body(url, resp, f, name, progress)
            if expected is not None and digest != expected:
                raise TrainError(f"{url}: sha256 mismatch: expected {expected}, got {digest}")
            # The type goes beside the body before the body is renamed into place, so a
            # cached body always has it.
            write_text_atomic(sidecar, ctype)
    except TimeoutError as exc:
        raise TrainError(
            f"could not download {url}: no data for {timeout:g} s (stalled; a longer "
            "--download-timeout waits more)"
        ) from exc
    except (
        urllib.error.URLError,
        http.client.HTTPException,
        OSError,
        ValueError,
        zlib.error,
    ) as exc:
        raise TrainError(f"could not download {url}: {_reason(exc)}") from exc
    return _describe(url, path, digest, ctype)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"the body was cut short after {len(exc.partial)} more byte(s)"
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, TimeoutError):
        return "timed out connecting"
    return str(exc) or type(exc).__name__


def _copy_body(
    url: str, resp: http.client.HTTPResponse, out: BinaryIO, name: str, progress: bool
) -> str:
    """Write the decoded body of `resp` to `out`; its sha256. Raise on a body cut short."""
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    inflate: zlib._Decompress | None = None
    if encoding in ("gzip", "x-gzip"):
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    elif encoding == "deflate":  # zlib-wrapped, as HTTP means it
        inflate = zlib.decompressobj()
    elif encoding not in ("identity", ""):
        raise TrainError(f"could not download {url}: unsupported Content-Encoding {encoding!r}")
    length = resp.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() and not resp.chunked else None
    h = hashlib.sha256()
    received = 0
    bar = tqdm(total=total, desc=f"download {name}", unit="B", unit_scale=True,
               unit_divisor=1024, disable=not progress)  # fmt: skip
    with bar:
        while block := resp.read(_BLOCK):
            received += len(block)
            bar.update(len(block))
            data = inflate.decompress(block) if inflate is not None else block
            out.write(data)
            h.update(data)
    if total is not None and received < total:
        raise TrainError(
            f"could not download {url}: the connection closed after {received} of {total} bytes"
        )
    if inflate is not None:
        if not inflate.eof:
            raise TrainError(f"could not download {url}: the {encoding} body was cut short")
        rest = inflate.flush()
        out.write(rest)
        h.update(rest)
    return h.hexdigest()
