"""Download text sources over http(s) with a progress bar, a cache and sha256 checks.

A URL may carry its expected checksum as a fragment, `https://host/file.txt#sha256=<hex>`
(fragments are never sent to the server). Files are cached under `cache_dir` (default
$GPTKIT_CACHE_DIR or ~/.cache/gptkit/downloads) by a hash of the URL, written to a temporary
name and renamed (`gpt_tokenizers.atomic`), so an interrupted download never looks complete.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpt_tokenizers.atomic import atomic_path, write_text_atomic
from tqdm import tqdm

from gpt_train.errors import TrainError

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


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


@dataclass
class Downloaded:
    """A fetched URL: where it is cached, its checksum and whether it is an HTML page."""

    url: str
    path: Path
    sha256: str
    is_html: bool


def download(
    url: str,
    cache_dir: Path | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Downloaded:
    """Fetch `url` into the cache (reusing a cached copy) and verify its sha256 if given."""
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
    marker = path.with_name(path.name + ".html")  # exists when the server said text/html

    if path.exists():
        digest = sha256_file(path)
        if expected is None or digest == expected:
            return Downloaded(url, path, digest, marker.exists())
        path.unlink()  # a stale or corrupt cached copy: fetch again

    h = hashlib.sha256()
    try:
        with atomic_path(path) as tmp, urllib.request.urlopen(url, timeout=timeout) as resp:
            ctype = resp.headers.get("Content-Type", "")
            total = resp.headers.get("Content-Length")
            bar = tqdm(
                total=int(total) if total else None,
                desc=f"download {name}",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                disable=not progress,
            )
            with bar, tmp.open("wb") as f:
                while block := resp.read(1 << 16):
                    f.write(block)
                    h.update(block)
                    bar.update(len(block))
            digest = h.hexdigest()
            if expected is not None and digest != expected:
                raise TrainError(f"{url}: sha256 mismatch: expected {expected}, got {digest}")
            is_html = "html" in ctype.lower() or safe.lower().endswith((".html", ".htm"))
            if is_html:
                write_text_atomic(marker, ctype)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TrainError(f"could not download {url}: {exc}") from exc
    return Downloaded(url, path, digest, is_html)
