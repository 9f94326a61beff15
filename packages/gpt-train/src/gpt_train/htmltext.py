"""Reduce an HTML page to its visible text (stdlib html.parser, no third-party parser).

Script, style and other invisible elements are dropped; block elements become line breaks,
runs of spaces collapse, so a web page becomes plain prose a tokenizer can use. The page's
bytes are decoded by the first of: a byte-order mark, the HTTP charset, a `<meta charset>`
(or `http-equiv` Content-Type) in its first kilobytes, UTF-8.
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser

_INVISIBLE = {"script", "style", "head", "noscript", "template", "svg", "iframe", "object"}
_BLOCK = {
    "p", "div", "br", "hr", "li", "ul", "ol", "tr", "table", "section", "article", "header",
    "footer", "nav", "aside", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "dd",
    "dt", "dl", "title", "main", "figure", "figcaption", "form", "body", "html",
}  # fmt: skip


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside invisible elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self.hidden += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The visible text of `html`, one paragraph per line, whitespace tidied."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\r\f\v\u00a0]+", " ", line).strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):  # keep single blank lines between paragraphs
            out.append(line)
    return "\n".join(out).strip() + "\n"


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))  # fmt: skip


def meta_charset(head: bytes) -> str | None:
    """The charset an HTML page declares in a `<meta>` tag of its first 4 KB, if any."""
    found = _META_CHARSET.search(head[:4096])
    return found.group(1).decode("ascii").lower() if found else None


def html_encoding(raw: bytes, http_charset: str | None = None) -> str:
    """The encoding to read an HTML page's bytes with (BOM > HTTP charset > meta > UTF-8),
    as a codec name; an unknown declared name falls through to the next rule."""
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    for declared in (http_charset, meta_charset(raw)):
        if declared:
            try:
                return codecs.lookup(declared).name
            except LookupError:
                continue
    return "utf-8"


def decode_html(raw: bytes, http_charset: str | None = None) -> str:
    """The text of an HTML page's bytes (undecodable bytes become U+FFFD, as browsers do)."""
    return raw.decode(html_encoding(raw, http_charset), errors="replace")


def looks_like_html(text: str) -> bool:
    """A cheap sniff of the first kilobyte for an HTML document."""
    head = text[:1024].lstrip().lower()
    return head.startswith(("<!doctype html", "<html")) or "<html" in head or "<body" in head
