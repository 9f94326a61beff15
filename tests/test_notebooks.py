"""The teaching notebooks run from a fresh clone, cell by cell, and re-running a cell works.

Each notebook is kept as a jupytext percent script (notebooks/*.py, no outputs in git). The
test reads it with jupytext and executes it with nbclient on an ipykernel from this
environment, in a copy holding only what a clone has (notebooks/ and corpora/: no ../shared,
no prepared data, no runs). Then, in the same kernel, it runs the cells tagged "train" and
"sample" again and asks the kernel about what a learner relies on: the loss went down, text
was sampled, the pure-Python gradients match torch's.
"""

from __future__ import annotations

import ast
import base64
import shutil
import time
from pathlib import Path
from typing import Any

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LIMIT_S = 120  # each notebook must run in under two minutes on a 2-core CPU

pytestmark = pytest.mark.slow


def _fresh_copy(tmp_path: Path) -> Path:
    """notebooks/ and corpora/ copied into an empty folder, as a clone would hold them."""
    for folder in ("notebooks", "corpora"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path / "notebooks"


def _text(cell: Any) -> str:
    """Everything a code cell printed or displayed as text."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def _images(cell: Any) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in cell.get("outputs", [])
        if "data" in out and "image/png" in out["data"]
    ]


def _tagged(nb: Any, tag: str) -> tuple[int, Any]:
    hits = [(i, c) for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", [])]
    assert len(hits) == 1, f"expected one cell tagged {tag!r}, found {len(hits)}"
    return hits[0]


class Session:
    """A notebook executed cell by cell in one live kernel started in the notebook's folder."""

    def __init__(self, path: Path) -> None:
        self.nb = jupytext.read(path)
        self.client = NotebookClient(
            self.nb,
            timeout=LIMIT_S,
            kernel_name="python3",  # the venv's ipykernel (.venv/share/jupyter/kernels)
            resources={"metadata": {"path": str(path.parent)}},  # the kernel's cwd
        )

    def run_all(self) -> float:
        """Execute every cell in order (an error raises CellExecutionError); seconds taken."""
        start = time.perf_counter()
        for index, cell in enumerate(self.nb.cells):
            self.client.execute_cell(cell, index)
        return time.perf_counter() - start

    def rerun(self, tag: str) -> Any:
        index, cell = _tagged(self.nb, tag)
        return self.client.execute_cell(cell, index)

    def run(self, source: str) -> Any:
        """Execute `source` as an extra cell in the kernel; the executed cell."""
        cell = nbformat.v4.new_code_cell(source)  # type: ignore[no-untyped-call]
        self.nb.cells.append(cell)  # nbclient stores the executed cell back at its index
        try:
            self.client.execute_cell(cell, len(self.nb.cells) - 1)
        finally:
            self.nb.cells.pop()
        return cell

    def ask(self, expression: str) -> Any:
        """The value of `expression` in the kernel (a Python literal: numbers, strings, tuples)."""
        cell = self.run(f"print(repr(({expression})))")
        return ast.literal_eval(_text(cell).strip())

    def check_time(self, name: str, wall: float) -> None:
        """The kernel's CPU seconds (one torch thread) stand for a free 2-core machine's wall
        time: on a loaded CI machine the wall clock also counts other jobs."""
        cpu = self.ask("__import__('time').process_time()")
        print(f"{name}: {cpu:.1f} s CPU in the kernel, {wall:.1f} s wall")
        assert cpu < LIMIT_S, f"{name} took {cpu:.0f} s of CPU (limit {LIMIT_S} s)"


@pytest.fixture
def kernel_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """One torch thread in the kernel (the suite shares a small CPU), an inline plotting
    backend, and a temporary folder of the test's own for the figures the notebooks save."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("kernel-tmp")))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.delenv("PYTHONPATH", raising=False)


@pytest.mark.usefixtures("kernel_env")
def test_text_to_samples_runs_in_order_and_again(tmp_path: Path) -> None:
    folder = _fresh_copy(tmp_path)
    clone = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    session = Session(folder / "01_text_to_samples.py")
    with session.client.setup_kernel():
        session.check_time("01_text_to_samples", session.run_all())
        cells = session.nb.cells
        assert session.ask("str(Path.cwd())") == str(folder)

        first, last = session.ask("float(first), float(last)")  # means of 10 steps
        assert first > 3.5, first
        assert last < first - 1.0, (first, last)  # from about ln 65 = 4.17

        _, sample_cell = _tagged(session.nb, "sample")
        printed = _text(sample_cell)
        assert printed.count("ROMEO:") == 3, printed  # one sample per temperature
        assert len(printed) > 3 * 120, printed
        pictures = [img for c in cells for img in _images(c)]
        assert len(pictures) == 2  # the loss curve and the attention maps
        assert all(p.startswith(b"\x89PNG") for p in pictures)
        assert any("lm_head" in _text(c) and "tok_emb" in _text(c) for c in cells)  # the trace

        steps = session.ask("len(losses)")
        session.run("STEPS = 5")  # a short second round keeps the test quick
        session.rerun("train")  # continues training the same model
        assert session.ask("len(losses)") == steps + 5
        again = _text(session.rerun("sample"))
        assert again.count("ROMEO:") == 3
    # Nothing was written beside the notebook or anywhere else in the clone.
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == clone


@pytest.mark.usefixtures("kernel_env")
def test_micro_gpt_runs_in_order_and_again(tmp_path: Path) -> None:
    folder = _fresh_copy(tmp_path)
    session = Session(folder / "02_micro_gpt.py")
    with session.client.setup_kernel():
        session.check_time("02_micro_gpt", session.run_all())
        assert session.ask("(a.grad, b.grad)") == (4.0, 2.0)
        start, end = session.ask("early, late")
        assert end < start - 0.2, (start, end)
        names = _text(_tagged(session.nb, "sample")[1])
        assert len(names.split()) >= 5, names
        grad_diff = session.ask("max_grad_diff")
        assert grad_diff < 1e-9
        assert "max |gradient difference|" in _text(_tagged(session.nb, "gradcheck")[1])

        steps = session.ask("len(losses)")
        session.run("STEPS = 3")
        session.rerun("train")
        assert session.ask("len(losses)") == steps + 3
        assert len(_text(session.rerun("sample")).split()) >= 5
        session.rerun("gradcheck")
        assert session.ask("max_grad_diff") < 1e-9
