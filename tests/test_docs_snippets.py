"""The ```python blocks of docs/*.md and README.md run, so the documentation cannot rot.

Each file's blocks run in order in one namespace (a later block may use an earlier block's
names), in a fresh temporary working directory. A block preceded by the line
`<!-- skip-test -->` is skipped (for the rare command that takes minutes).

The snippets' models are tiny, so torch runs them on one thread: on a busy 2-core machine
its thread pool otherwise spends far more time waiting on itself than computing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SKIP_MARK = "<!-- skip-test -->"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """One ```python block: its code, the line its code starts on, and whether to skip it."""

    code: str
    line: int
    skip: bool


def python_blocks(markdown: str) -> list[Block]:
    """Every ```python block of a Markdown text, in order."""
    blocks = []
    for m in FENCE.finditer(markdown):
        before = markdown[: m.start()].rstrip().splitlines()
        skip = bool(before) and before[-1].strip() == SKIP_MARK
        line = markdown.count("\n", 0, m.start(1)) + 1
        blocks.append(Block(m.group(1), line, skip))
    return blocks


def documents() -> list[Path]:
    return [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]


def test_block_extraction_sees_skips_and_line_numbers() -> None:
    text = (
        "intro\n```python\nx = 1\n```\n\n<!-- skip-test -->\n```python\nslow()\n```\n"
        "```bash\nls\n```\n```python title\ny = x + 1\n```\n"
    )
    blocks = python_blocks(text)
    assert [b.code for b in blocks] == ["x = 1\n", "slow()\n", "y = x + 1\n"]
    assert [b.skip for b in blocks] == [False, True, False]
    assert [b.line for b in blocks] == [3, 8, 14]


@pytest.mark.parametrize("doc", documents(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_python_blocks_run(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = [b for b in python_blocks(doc.read_text(encoding="utf-8")) if not b.skip]
    if not blocks:
        pytest.skip(f"{doc.name} has no python blocks to run")
    monkeypatch.chdir(tmp_path)
    # Snippets may refer to files of the checkout through this variable.
    monkeypatch.setenv("GPTKIT_ROOT", str(REPO_ROOT))
    namespace: dict[str, object] = {"__name__": f"docs_{doc.stem}"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for block in blocks:
            code = compile(block.code, f"{doc}:{block.line}", "exec")
            try:
                exec(code, namespace)
            except Exception as exc:
                out = capsys.readouterr()
                raise AssertionError(
                    f"{doc.relative_to(REPO_ROOT)}, block at line {block.line} failed: "
                    f"{type(exc).__name__}: {exc}\n--- stdout ---\n{out.out[-2000:]}"
                ) from exc
    finally:
        torch.set_num_threads(threads)
    assert os.getcwd() == str(tmp_path), "a snippet changed the working directory"
