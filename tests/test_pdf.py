"""`make pdf`: the tutorial and the theory as one PDF, read back with pypdf.

The book is built once (a tiny run is trained for its figures) and each test reads what a
reader would see: the chapter titles, typeset equations, the embedded figures, links that
work on paper, a sane length; and a missing doc is refused in one line.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image
from pypdf import PageObject, PdfReader

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "build_pdf.py"
DOCS = [ROOT / "docs" / "tutorial.md", ROOT / "docs" / "theory.md"]
STEPS = 30  # enough for a loss curve with a few validation points


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_pdf", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flat(text: str) -> str:
    """Text with every run of whitespace as one space (PDF text breaks lines anywhere)."""
    return " ".join(text.split())


def _title(doc: Path) -> str:
    return doc.read_text(encoding="utf-8").splitlines()[0].removeprefix("# ").strip()


def _image_sizes(page: PageObject) -> list[tuple[int, int]]:
    """(width, height) of each image a page draws, from the image headers (page.images would
    decode them all and scan every page's content for inline images: seconds)."""
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    found = []
    for ref in (xobjects.get_object() if xobjects is not None else {}).values():
        obj = ref.get_object()
        if obj.get("/Subtype") == "/Image":
            found.append((int(obj["/Width"]), int(obj["/Height"])))
    return found


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PdfReader:
    out = tmp_path_factory.mktemp("pdf") / "book.pdf"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest on a busy machine
    try:
        rc = _script().main(["--out", str(out), "--steps", str(STEPS)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    return PdfReader(out)


@pytest.fixture(scope="module")
def raw_pages(book: PdfReader) -> list[str]:
    return [p.extract_text() for p in book.pages]  # slow: once per module


@pytest.fixture(scope="module")
def pages(raw_pages: list[str]) -> list[str]:
    return [_flat(p) for p in raw_pages]


def test_each_doc_is_a_chapter_that_starts_a_page(book: PdfReader, pages: list[str]) -> None:
    chapters = [entry for entry in book.outline if not isinstance(entry, list)]
    assert [c.title for c in chapters] == [_title(d) for d in DOCS]  # the PDF's bookmarks
    for chapter in chapters:
        page = book.get_destination_page_number(chapter)
        assert page is not None
        assert pages[page].startswith(_flat(str(chapter.title)))


def test_equations_are_typeset_not_left_as_tex(pages: list[str]) -> None:
    text = " ".join(pages)
    # Math italic letters (U+1D44E...) only come from typeset math.
    assert "Attention(𝑄, 𝐾, 𝑉" in text
    assert "RMSNorm(𝑥)" in text
    for tex in ("\\frac", "\\mathrm", "$$", "\\left", "\\sqrt"):
        assert tex not in text


def test_code_blocks_keep_their_lines(raw_pages: list[str]) -> None:
    text = "\n".join(raw_pages)
    assert "from gpt_tokenizers import CharTokenizer\n" in text
    assert "chars = CharTokenizer.from_text(text, eos=True)" in text


def test_the_figures_of_a_real_run_are_embedded_with_their_captions(
    book: PdfReader, pages: list[str]
) -> None:
    tutorial = DOCS[0].read_text(encoding="utf-8")
    captions = re.findall(r"<!-- pdf-figure: \S+ \| (.+?) -->", tutorial)
    assert len(captions) == 2  # the loss curve and the attention map
    sizes = {i: _image_sizes(page) for i, page in enumerate(book.pages)}
    with_images = [i for i, found in sizes.items() if found]
    assert sum(len(found) for found in sizes.values()) >= 2
    assert all(min(size) > 200 for found in sizes.values() for size in found)  # plots, not icons
    for n, caption in enumerate(captions, start=1):
        hits = [i for i, p in enumerate(pages) if f"Figure {n}: {_flat(caption)}" in p]
        assert hits, f"caption of figure {n} missing"
        assert set(hits) <= set(with_images)  # the caption sits with its picture


def test_links_jump_inside_the_book_or_to_the_web(book: PdfReader) -> None:
    internal, uris = _link_targets(book.pages)
    assert internal >= 1  # the tutorial's link to theory.md now goes to the Theory chapter
    assert [u for u in uris if "://" not in u] == []  # no relative file link left


def test_page_count_is_sane(book: PdfReader) -> None:
    assert 5 <= len(book.pages) <= 200


def _link_targets(pages: Sequence[PageObject]) -> tuple[int, list[str]]:
    """How many links on these pages jump inside the document, and the others' addresses."""
    internal, uris = 0, []
    for page in pages:
        for annot in page.get("/Annots") or []:
            a = annot.get_object()
            if a.get("/Subtype") != "/Link":
                continue
            action = a.get("/A")
            if action is not None and action.get_object().get("/S") == "/URI":
                uris.append(str(action.get_object()["/URI"]))
            else:
                internal += 1
    return internal, uris


def test_links_and_images_of_any_doc_work_on_paper(tmp_path: Path) -> None:
    script = _script()
    docs = tmp_path / "docs"
    docs.mkdir()
    Image.new("RGB", (320, 240), "teal").save(docs / "pic.png")
    a, b = docs / "a.md", docs / "b.md"
    a.write_text(
        "# Alpha\n\nSee [the other chapter](b.md), [its part two](b.md#part-two), "
        "[a source file](../src/x.py#L1-L5) and [the web](https://example.org/).\n\n"
        "![A picture](pic.png)\n\n$$\\mathrm{softmax}\\!\\left(x\\right) \\odot y$$\n"
    )
    b.write_text("# Beta\n\n## Part two\n\nThe end.\n")
    work = tmp_path / "work"
    work.mkdir()
    source = script.to_typst([a, b], [a.read_text(), b.read_text()], work)
    pdf, _ = script.typeset(source, work)
    (tmp_path / "out.pdf").write_bytes(pdf)
    reader = PdfReader(tmp_path / "out.pdf")
    texts = [_flat(p.extract_text()) for p in reader.pages]
    alpha = [p for p, t in zip(reader.pages, texts, strict=True) if t.startswith("Alpha")]
    internal, uris = _link_targets(alpha)  # the chapter's own links, not the contents'
    assert uris == ["https://example.org/"]
    assert internal == 2  # to the other chapter and to its section
    text = " ".join(texts)
    assert "a source file and the web" in text  # a repository path has no meaning on paper
    assert "softmax(𝑥) ⊙ 𝑦" in text
    assert [size for page in reader.pages for size in _image_sizes(page)] == [(320, 240)]

    a.write_text("# Alpha\n\n![gone](nowhere.png)\n")
    with pytest.raises(script.BuildError, match=r"a\.md: image nowhere\.png not found"):
        script.to_typst([a], [a.read_text()], work)


def test_a_missing_doc_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "book.pdf"
    out.write_bytes(b"an earlier build")
    missing = tmp_path / "nowhere.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--docs", str(DOCS[0]), str(missing), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {missing}: no such file (the PDF is built from tutorial.md, nowhere.md)"
    ]
    assert out.read_bytes() == b"an earlier build"


def test_help_says_what_it_builds() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "--out" in proc.stdout
    assert "docs/tutorial.md" in proc.stdout
