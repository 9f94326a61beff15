"""docs/theory.md links every concept to the lines of code that implement it, and the links
stay right: a missing file, a range past the end of a file, or a symbol renamed or moved away
from its range fails here, with the command that refreshes the ranges
(`uv run python scripts/theory_links.py --fix`)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
THEORY = REPO_ROOT / "docs" / "theory.md"


def _load_script() -> ModuleType:
    path = REPO_ROOT / "scripts" / "theory_links.py"
    spec = importlib.util.spec_from_file_location("theory_links", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


links = _load_script()

SOURCE = '''\
import functools


LIMIT = 3


class Box:
    """A box."""

    @functools.cache
    def area(self) -> int:
        return 1

    def volume(self) -> int:
        return 2


def free() -> None:
    pass
'''


def _documents() -> list[Path]:
    """Every Markdown document of the repository that a reader follows links from."""
    return sorted(
        [*REPO_ROOT.glob("docs/*.md"), *REPO_ROOT.glob("*.md"), *REPO_ROOT.glob("*/*/README.md")]
    )


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_code_link_points_at_the_symbol_it_names(doc: Path) -> None:
    found = [p for link in links.code_links(doc) for p in links.problems(link)]
    assert found == [], "\n".join(found)


def test_theory_has_its_code_links() -> None:
    assert len(links.code_links(THEORY)) >= 30


def test_every_concept_section_links_to_its_code() -> None:
    text = THEORY.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    assert len(sections) >= 10
    unlinked = []
    for section in sections:
        title = section.splitlines()[0]
        ranged = [
            link
            for link in links.code_links(THEORY, section)
            if link.lines() is not None and link.symbol is not None
        ]
        if not ranged:
            unlinked.append(title)
    assert unlinked == [], f"sections without a link to the code's lines: {unlinked}"


def test_links_render_on_github_from_docs() -> None:
    # GitHub resolves a relative link from the document's own folder; a line range is
    # #L<first>-L<last>. Every code link is such a link, to a file of the repository.
    for link in links.code_links(THEORY):
        assert not link.path.startswith(("/", "http")), link.where
        assert link.path.startswith("../"), link.where
        assert (THEORY.parent / link.path).resolve().is_relative_to(REPO_ROOT), link.where
        if link.anchor is not None:
            assert re.fullmatch(r"#L\d+(-L\d+)?", link.anchor), link.where


def test_symbol_lines_include_decorators_and_nested_names() -> None:
    assert links.symbol_lines(SOURCE, "Box") == (7, 15)
    assert links.symbol_lines(SOURCE, "Box.area") == (10, 12)
    assert links.symbol_lines(SOURCE, "Box.volume") == (14, 15)
    assert links.symbol_lines(SOURCE, "free") == (18, 19)
    assert links.symbol_lines(SOURCE, "LIMIT") == (4, 4)
    assert links.symbol_lines(SOURCE, "Box.missing") is None
    assert links.symbol_lines(SOURCE, "Nope.area") is None


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository with one module, src/box.py, and a docs/ folder."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "box.py").write_text(SOURCE)
    (tmp_path / "docs").mkdir()
    return tmp_path


def _problems(project: Path, markdown: str) -> list[str]:
    doc = project / "docs" / "t.md"
    doc.write_text(markdown)
    return [p for link in links.code_links(doc) for p in links.problems(link, project)]


@pytest.mark.parametrize(
    ("markdown", "message"),
    [
        ("[`Box.area`](../src/gone.py#L10-L12)", "no such file: "),
        ("[`Box.area`](../src/box.py#L10-L40)", "lines 10-40 are not within the file's 19"),
        ("[`Box.area`](../src/box.py#L14-L15)", "not at lines 14-15: Box.area is at lines 10-12"),
        ("[`Box.surface`](../src/box.py#L10-L12)", "Box.surface is not defined in"),
        ("[the area](../src/box.py#L10-L12)", "name the symbol it shows"),
        ("[`Box.area`](../src/box.py#L10:12)", "the anchor must read #L<first>-L<last>"),
        ("[`Box`](/src/box.py#L7-L15)", "must be relative to the document's folder"),
        ("[`Box`](../../elsewhere/box.py#L7-L15)", "the path leaves the repository"),
    ],
)
def test_a_wrong_link_is_reported_with_its_place_and_the_fix(
    project: Path, markdown: str, message: str
) -> None:
    found = _problems(project, f"# Doc\n\nSee {markdown}.\n")
    assert len(found) == 1, found
    assert found[0].startswith(f"{project / 'docs' / 't.md'}:3: ")  # where to look
    assert message in found[0]


def test_right_links_pass_by_code_text_or_by_title(project: Path) -> None:
    markdown = (
        '[`Box.area`](../src/box.py#L10-L12), [the box](../src/box.py#L7-L15 "Box"),\n'
        "[`free()`](../src/box.py#L18-L19), [`LIMIT`](../src/box.py#L4), "
        "[the module](../src/box.py) and [a site](https://example.org/x.py#L1)\n"
    )
    assert _problems(project, markdown) == []


def test_fix_rewrites_moved_ranges_and_leaves_the_rest(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = project / "docs" / "t.md"
    doc.write_text(
        'A [`Box.volume`](../src/box.py#L1-L2) and [the area](../src/box.py#L9 "Box.area").\n'
        "Gone: [`Box.surface`](../src/box.py#L3-L4). Whole: [box](../src/box.py).\n"
    )
    argv = [str(doc), "--root", str(project)]
    assert links.main(argv) == 1
    assert "run `uv run python scripts/theory_links.py --fix`" in capsys.readouterr().err
    assert links.main(["--fix", *argv]) == 1  # Box.surface cannot be fixed: still reported
    out, err = capsys.readouterr()
    assert "refreshed 2 line range(s)" in out
    assert "Box.surface is not defined" in err
    assert doc.read_text() == (
        "A [`Box.volume`](../src/box.py#L14-L15) and "
        '[the area](../src/box.py#L10-L12 "Box.area").\n'
        "Gone: [`Box.surface`](../src/box.py#L3-L4). Whole: [box](../src/box.py).\n"
    )
    doc.write_text(doc.read_text().replace("Box.surface", "Box"))
    assert links.main(["--fix", *argv]) == 0
    assert "[`Box`](../src/box.py#L7-L15)" in doc.read_text()
    assert links.main(argv) == 0


def test_the_script_checks_theory_md_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert links.main([]) == 0
    assert "docs/theory.md: " in capsys.readouterr().out
