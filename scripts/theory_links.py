"""Check, or refresh, the links from the docs to the code that implements each concept.

A code link names its symbol and points at the symbol's lines, as GitHub renders them:

    [`CausalSelfAttention.forward`](../packages/gpt-core/src/gpt_core/attention.py#L104-L127)
    [the causal mask](../packages/gpt-core/src/gpt_core/attention.py#L25-L33 "causal_mask")

(the symbol is the link's title when it has one, else its `code` text). Code moves, so the
line ranges are derived from the symbols with `ast`: `--fix` rewrites them, and without it
the script lists every link whose file is missing, whose range runs past the end of the file,
or whose symbol is no longer defined at that range.

    uv run python scripts/theory_links.py          # check docs/theory.md (exit 1 on problems)
    uv run python scripts/theory_links.py --fix    # rewrite the line ranges from the symbols
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from gpt_tokenizers.atomic import write_text_atomic

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOCS = (ROOT / "docs" / "theory.md",)
FIX_HINT = "run `uv run python scripts/theory_links.py --fix` to refresh the line ranges"
LINK = re.compile(
    r"\[(?P<text>[^\]\n]+)\]\((?P<path>[^)\s#]+\.py)(?P<anchor>#[^)\s]*)?"
    r'(?:\s+"(?P<title>[^"\n]*)")?\)'
)
ANCHOR = re.compile(r"#L(?P<start>\d+)(?:-L(?P<end>\d+))?")
SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True)
class CodeLink:
    """One Markdown link to a .py file: where it stands and what it names."""

    doc: Path
    line: int
    start: int  # offset of the whole link in the document
    end: int
    text: str
    path: str  # as written, relative to the document's folder
    anchor: str | None
    symbol: str | None

    @property
    def where(self) -> str:
        return f"{_shown(self.doc)}:{self.line}: [{self.text}]({self.path}{self.anchor or ''})"

    def lines(self) -> tuple[int, int] | None:
        """The line range of the anchor, or None without a (well-formed) one."""
        m = ANCHOR.fullmatch(self.anchor or "")
        if m is None:
            return None
        first = int(m["start"])
        return first, int(m["end"] or first)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _symbol(text: str, title: str | None) -> str | None:
    """The symbol a link names: its title, else its text if that is one `code` span."""
    name = title if title is not None else text.strip()
    if title is None:
        if not (name.startswith("`") and name.endswith("`")):
            return None
        name = name.strip("`")
    name = name.removesuffix("()")
    return name if SYMBOL.fullmatch(name) else None


def code_links(doc: Path, text: str | None = None) -> list[CodeLink]:
    """Every link of a Markdown document to a Python file, in order."""
    text = doc.read_text(encoding="utf-8") if text is None else text
    return [
        CodeLink(
            doc=doc,
            line=text.count("\n", 0, m.start()) + 1,
            start=m.start(),
            end=m.end(),
            text=m["text"],
            path=m["path"],
            anchor=m["anchor"],
            symbol=_symbol(m["text"], m["title"]),
        )
        for m in LINK.finditer(text)
        if "://" not in m["path"]
    ]


def symbol_lines(source: str, symbol: str) -> tuple[int, int] | None:
    """First and last line of a def, class or module-level assignment named by a dotted
    path (`Class.method`), decorators included; None when the module does not define it."""
    body: list[ast.stmt] = ast.parse(source).body
    *outer, last = symbol.split(".")
    for part in outer:
        cls = next((n for n in body if isinstance(n, ast.ClassDef) and n.name == part), None)
        if cls is None:
            return None
        body = cls.body
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == last:
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                return first, node.end_lineno or node.lineno
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == last for t in targets):
                return node.lineno, node.end_lineno or node.lineno
    return None


def _target(link: CodeLink) -> Path:
    return (link.doc.parent / link.path).resolve()


def _path_problem(link: CodeLink, root: Path) -> str | None:
    """Why GitHub could not show the linked file, if it could not."""
    if link.path.startswith("/") or "\\" in link.path:
        return "the path must be relative to the document's folder, with / separators"
    target = _target(link)
    if not target.is_relative_to(root):
        return f"the path leaves the repository (it resolves to {target})"
    if not target.is_file():
        return f"no such file: {_shown(target)}"
    return None


def problems(link: CodeLink, root: Path = ROOT) -> list[str]:
    """What is wrong with one link (whose file must lie inside `root`): [] when it is right."""
    bad = _path_problem(link, root)
    if bad is not None:
        return [f"{link.where}: {bad}"]
    if link.anchor is None:
        return []  # a link to a whole file needs no symbol
    lines = link.lines()
    if lines is None:
        return [f"{link.where}: the anchor must read #L<first>-L<last> (or #L<line>)"]
    source = _target(link).read_text(encoding="utf-8")
    length = len(source.splitlines())
    if link.symbol is None:
        return [
            f"{link.where}: name the symbol it shows, as the link text in backticks "
            '(`Class.method`) or as its title ("Class.method")'
        ]
    span = symbol_lines(source, link.symbol)
    if span is None:
        return [
            f"{link.where}: {link.symbol} is not defined in {_shown(_target(link))} "
            "(renamed or moved?); point the link at its new name or file"
        ]
    if span == lines:
        return []
    outside = lines[1] > length or lines[0] > lines[1] or lines[0] < 1
    wrong = (
        f"lines {lines[0]}-{lines[1]} are not within the file's {length}"
        if outside
        else f"{link.symbol} is not at lines {lines[0]}-{lines[1]}"
    )
    return [f"{link.where}: {wrong}: {link.symbol} is at lines {span[0]}-{span[1]}; {FIX_HINT}"]


def anchor_for(span: tuple[int, int]) -> str:
    """GitHub's anchor for a line range."""
    return f"#L{span[0]}" if span[0] == span[1] else f"#L{span[0]}-L{span[1]}"


def fixed(doc: Path, text: str, root: Path = ROOT) -> tuple[str, int]:
    """The document with every symbol-naming link's range refreshed, and how many changed
    (links to missing files or symbols are left for `problems` to report)."""
    pieces, pos, changed = [], 0, 0
    for link in code_links(doc, text):
        if link.symbol is None or _path_problem(link, root) is not None:
            continue
        span = symbol_lines(_target(link).read_text(encoding="utf-8"), link.symbol)
        if span is None or link.lines() == span:
            continue
        old = text[link.start : link.end]
        written = f"{link.path}{link.anchor or ''}"
        new = old.replace(f"({written}", f"({link.path}{anchor_for(span)}", 1)
        pieces += [text[pos : link.start], new]
        pos, changed = link.end, changed + 1
    return "".join([*pieces, text[pos:]]), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("docs", nargs="*", type=Path, help="Markdown files (default: theory.md)")
    parser.add_argument("--fix", action="store_true", help="rewrite line ranges from symbols")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="the links must stay inside this folder"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    docs = [p.resolve() for p in args.docs] or list(DEFAULT_DOCS)
    found: list[str] = []
    for doc in docs:
        if not doc.is_file():
            print(f"error: no such document: {doc}", file=sys.stderr)
            return 2
        if args.fix:
            text, changed = fixed(doc, doc.read_text(encoding="utf-8"), root)
            if changed:
                write_text_atomic(doc, text)
            print(f"{_shown(doc)}: refreshed {changed} line range(s)")
        links = code_links(doc)
        found += [p for link in links for p in problems(link, root)]
        if not args.fix:
            print(f"{_shown(doc)}: {len(links)} code links checked")
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
