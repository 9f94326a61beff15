"""Downloads against misbehaving servers on 127.0.0.1: cut-short bodies, stalls, charsets, gzip."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from gpt_tokenizers import load_tokenizer
from gpt_train import TrainError
from gpt_train.download import download
from gpt_train.prepare import prepare_data

TEXT = "Café crème, naïve façade: déjà vu.\n" * 30
Route = Callable[[http.server.BaseHTTPRequestHandler], None]


class _Server:
    """An HTTP/1.1 server on 127.0.0.1 whose routes write raw responses (so they can lie)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.release = threading.Event()  # ends the stalling route at teardown
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.close_connection = True
                route = routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        serve = lambda: self.httpd.serve_forever(poll_interval=0.05)  # noqa: E731
        threading.Thread(target=serve, daemon=True).start()

    def body(self, path: str, body: bytes, headers: dict[str, str]) -> str:
        """Serve `body` at `path` with these headers (Content-Length added unless given)."""

        def route(h: http.server.BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            for key, value in {"Content-Length": str(len(body)), **headers}.items():
                h.send_header(key, value)
            h.end_headers()
            h.wfile.write(body)

        self.routes[path] = route
        return self.url + path


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.release.set()
    s.httpd.shutdown()
    s.httpd.server_close()


def _one_line_naming(exc: pytest.ExceptionInfo[TrainError], url: str) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert url in message
    return message


def test_a_body_shorter_than_its_content_length_is_an_error(
    tmp_path: Path, server: _Server
) -> None:
    url = server.body("/short.txt", b"x" * 50, {"Content-Length": "100"})
    with pytest.raises(TrainError) as exc:
        download(url, cache_dir=tmp_path / "c", progress=False)
    assert "closed after 50 of 100 bytes" in _one_line_naming(exc, url)
    assert list((tmp_path / "c").iterdir()) == []  # nothing cached, not even a temporary


def test_a_chunked_body_cut_short_is_an_error(tmp_path: Path, server: _Server) -> None:
    def route(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.write(b"5\r\nhello\r\n10\r\nonly part")  # no last chunk: the server hung up

    server.routes["/chunked.txt"] = route
    url = server.url + "/chunked.txt"
    with pytest.raises(TrainError) as exc:
        download(url, cache_dir=tmp_path / "c", progress=False)
    assert "cut short" in _one_line_naming(exc, url)
    assert list((tmp_path / "c").iterdir()) == []


def test_a_complete_chunked_body_is_kept(tmp_path: Path, server: _Server) -> None:
    def route(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.write(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")

    server.routes["/whole.txt"] = route
    got = download(server.url + "/whole.txt", cache_dir=tmp_path / "c", progress=False)
    assert got.path.read_bytes() == b"hello world"


def test_a_stalled_transfer_fails_after_the_stall_timeout(tmp_path: Path, server: _Server) -> None:
    def route(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b"a first few bytes, then nothing")
        h.wfile.flush()
        server.release.wait(10)  # bounded: the fixture releases it at teardown

    server.routes["/stall.txt"] = route
    url = server.url + "/stall.txt"
    t0 = time.monotonic()
    with pytest.raises(TrainError) as exc:
        download(url, cache_dir=tmp_path / "c", progress=False, timeout=0.5)
    assert time.monotonic() - t0 < 5
    assert "no data for 0.5 s" in _one_line_naming(exc, url)
    assert list((tmp_path / "c").iterdir()) == []
    with pytest.raises(TrainError, match="download timeout must be positive"):
        prepare_data([url], tmp_path / "d", download_timeout=0, progress=False)


def test_a_gzip_encoded_body_is_decoded_and_checksummed_decoded(
    tmp_path: Path, server: _Server
) -> None:
    raw = TEXT.encode()
    url = server.body("/book.txt", gzip.compress(raw), {"Content-Encoding": "gzip"})
    good = hashlib.sha256(raw).hexdigest()
    got = download(f"{url}#sha256={good}", cache_dir=tmp_path / "c", progress=False)
    assert got.path.read_bytes() == raw
    assert got.sha256 == good


def test_a_gzip_body_cut_short_is_an_error(tmp_path: Path, server: _Server) -> None:
    packed = gzip.compress(TEXT.encode() * 20)
    half = packed[: len(packed) // 2]  # a server that gzips a file still being written
    url = server.body("/half.txt", half, {"Content-Encoding": "gzip"})
    with pytest.raises(TrainError) as exc:
        download(url, cache_dir=tmp_path / "c", progress=False)
    assert "gzip body was cut short" in _one_line_naming(exc, url)
    assert list((tmp_path / "c").iterdir()) == []


def _prepared_text(data_dir: Path) -> str:
    meta = json.loads((data_dir / "meta.json").read_text())
    tok = load_tokenizer(data_dir / "tokenizer.json")
    parts = []
    for split in ("train", "val"):
        ids = np.fromfile(data_dir / f"{split}.bin", dtype=np.dtype(meta["dtype"]))
        parts.append(tok.decode([int(i) for i in ids if i != tok.eot_id]))
    return "".join(parts)


META_HTTP_EQUIV = b'<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain; charset=latin-1", TEXT.encode("latin-1")),
        ("text/plain; charset=UTF-16", TEXT.encode("utf-16")),
        ("text/html", b'<html><head><meta charset="iso-8859-1"></head><body><p>'
         + TEXT.encode("latin-1") + b"</p></body></html>"),
        ("text/html", b"<html><head>" + META_HTTP_EQUIV + b"</head><body><p>"
         + TEXT.encode("cp1252") + b"</p></body></html>"),
        # the HTTP header wins over a (wrong) <meta charset>
        ("text/html; charset=latin-1", b'<html><head><meta charset="utf-8"></head><body><p>'
         + TEXT.encode("latin-1") + b"</p></body></html>"),
    ],
)  # fmt: skip
def test_the_declared_charset_is_honoured(
    tmp_path: Path, server: _Server, content_type: str, body: bytes
) -> None:
    url = server.body("/page", body, {"Content-Type": content_type})
    prepare_data([url], tmp_path / "d", cache_dir=tmp_path / "c", progress=False)
    text = _prepared_text(tmp_path / "d")
    assert "Café crème, naïve façade: déjà vu." in text
    assert "\ufffd" not in text


def test_a_local_html_file_honours_its_meta_charset(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(b'<html><head><meta charset="latin-1"></head><body><p>'
                     + TEXT.encode("latin-1") + b"</p></body></html>")  # fmt: skip
    prepare_data([str(page)], tmp_path / "d", progress=False)
    assert "Café crème, naïve façade: déjà vu." in _prepared_text(tmp_path / "d")


def test_an_unknown_charset_is_a_one_line_error(tmp_path: Path, server: _Server) -> None:
    url = server.body("/odd.txt", b"text\n" * 20, {"Content-Type": "text/plain; charset=klingon"})
    with pytest.raises(TrainError) as exc:
        prepare_data([url], tmp_path / "d", cache_dir=tmp_path / "c", progress=False)
    assert "unknown charset 'klingon'" in _one_line_naming(exc, url)


def test_undeclared_non_utf8_text_is_an_error_naming_the_url(
    tmp_path: Path, server: _Server
) -> None:
    url = server.body("/latin.txt", TEXT.encode("latin-1"), {"Content-Type": "text/plain"})
    with pytest.raises(TrainError) as exc:
        prepare_data([url], tmp_path / "d", cache_dir=tmp_path / "c", progress=False)
    assert "not UTF-8 text" in _one_line_naming(exc, url)
