"""docs/tutorial.md, followed top to bottom in a fresh clone, works, and so does re-running it.

A learner copies the commands into a shell and the Python blocks into one `uv run python`
session, in order, from the root of a new clone. This test does the same: it copies the
tracked files (`git ls-files`) into a temporary folder, runs every ```bash block's commands
there as subprocesses, and feeds every ```python block to ONE Python process (a later block
sees what an earlier one made, and files land in the clone). Every Python block is run a
second time right after its first run, as a notebook user re-runs a cell: training again
from Python must start afresh (`overwrite=True`), not refuse.

The clone is a clone: its processes import gptkit from the clone's own sources
(PYTHONPATH, ahead of the venv's editable installs of this checkout), so relative and absolute
paths to the clone's names list are the same input, as in a real fresh clone. The venv itself
is reused (`uv run` with UV_NO_SYNC and UV_PROJECT_ENVIRONMENT) instead of syncing a new one.

One override keeps this under a minute: a `uv run train` command that does not choose its own
`--max-steps` gets `--max-steps 30` appended (the names recipe's 600 steps take about a
minute alone). Everything else runs as written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from gpt_cli import train

REPO_ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = REPO_ROOT / "docs" / "tutorial.md"
SKIP_MARK = "<!-- skip-test -->"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
SHELLS = {"bash", "sh", "shell", "console"}
TEST_MAX_STEPS = "30"  # the one override (see the module docstring)
CELL_TIMEOUT_S = 240.0

# Reads one JSON cell per line, runs it in one namespace, answers one JSON line per cell.
DRIVER = r"""
import contextlib, io, json, sys, traceback
namespace = {"__name__": "__main__"}
for line in sys.stdin:
    cell = json.loads(line)
    out = io.StringIO()
    ok = True
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            exec(compile(cell["code"], cell["name"], "exec"), namespace)
        except BaseException:
            ok = False
            traceback.print_exc()
    sys.__stdout__.write(json.dumps({"ok": ok, "output": out.getvalue()}) + "\n")
    sys.__stdout__.flush()
"""


@dataclass(frozen=True)
class Block:
    """One fenced block of the tutorial: its language, code and the line its code starts on."""

    lang: str
    code: str
    line: int


def tutorial_blocks(markdown: str) -> list[Block]:
    """The python and shell blocks, in order (```text output and skip-marked blocks left out)."""
    blocks = []
    for m in FENCE.finditer(markdown):
        lang = m.group(1)
        before = markdown[: m.start()].rstrip().splitlines()
        if (lang != "python" and lang not in SHELLS) or (before and before[-1] == SKIP_MARK):
            continue
        blocks.append(Block(lang, m.group(2), markdown.count("\n", 0, m.start(2)) + 1))
    return blocks


def shell_commands(code: str) -> list[list[str]]:
    """A shell block's commands as argument lists: `\\` continues a line, `#` comments, a
    console block's `$ ` prompt is dropped and its output lines are ignored."""
    joined = re.sub(r"\\\n", " ", code)
    commands = []
    has_prompts = any(line.startswith("$ ") for line in joined.splitlines())
    for line in joined.splitlines():
        if has_prompts:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        argv = shlex.split(line, comments=True)
        if argv:
            commands.append(argv)
    return commands


def for_the_test(argv: list[str]) -> list[str]:
    """The command as the test runs it: `uv run train` shortened unless it sets its steps."""
    if argv[:3] == ["uv", "run", "train"] and "--max-steps" not in argv:
        return [*argv, "--max-steps", TEST_MAX_STEPS]
    return argv


def fresh_clone(dest: Path) -> Path:
    """The checkout's tracked files, copied as they are now (uncommitted edits included)."""
    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know the tracked files")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout
    for name in listed.decode().split("\0"):
        src = REPO_ROOT / name
        if name and src.is_file():  # a tracked file deleted in the work tree is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def clone_env(clone: Path) -> dict[str, str]:
    """Environment of the clone's processes: its own sources, this venv, no sync, one thread."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("the tutorial's commands need uv")
    sources = [str(p) for p in sorted([*clone.glob("packages/*/src"), *clone.glob("apps/*/src")])]
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(sources),
        UV_NO_SYNC="1",
        UV_PROJECT_ENVIRONMENT=sys.prefix,
        VIRTUAL_ENV=sys.prefix,
        OMP_NUM_THREADS="1",
        PATH=os.pathsep.join([str(Path(uv).parent), env.get("PATH", "")]),
    )
    env.pop("GPTKIT_ROOT", None)
    return env


class PythonSession:
    """One Python process in the clone, fed the tutorial's cells in order."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DRIVER],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.replies: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True).start()

    def _read(self, stdout: IO[str]) -> None:
        for reply in stdout:
            self.replies.put(reply)

    def run(self, code: str, name: str) -> tuple[bool, str]:
        """Run one cell; (whether it raised nothing, what it printed or the traceback)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"code": code, "name": name}) + "\n")
        self.proc.stdin.flush()
        try:
            reply = json.loads(self.replies.get(timeout=CELL_TIMEOUT_S))
        except queue.Empty:
            return False, f"no answer in {CELL_TIMEOUT_S:.0f} s (exit code {self.proc.poll()})"
        return bool(reply["ok"]), str(reply["output"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def python_session(cwd: Path, env: dict[str, str]) -> Iterator[PythonSession]:
    session = PythonSession(cwd, env)
    try:
        yield session
    finally:
        session.close()


def run_command(
    argv: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """One command of a shell block, run in the clone."""
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file of a folder by relative path, with a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".train.lock"
    }


def test_block_and_command_extraction() -> None:
    text = (
        "```python\nx = 1\n```\n```text\nout\n```\n<!-- skip-test -->\n```bash\nslow\n```\n"
        "```bash\nuv run train --config a.yaml   # note\nuv run sample \\\n  --run r\n```\n"
        "```console\n$ uv run train --max-steps 2\nprinted output\n```\n"
    )
    blocks = tutorial_blocks(text)
    assert [(b.lang, b.line) for b in blocks] == [("python", 2), ("bash", 12), ("console", 17)]
    assert shell_commands(blocks[1].code) == [
        ["uv", "run", "train", "--config", "a.yaml"],
        ["uv", "run", "sample", "--run", "r"],
    ]
    assert shell_commands(blocks[2].code) == [["uv", "run", "train", "--max-steps", "2"]]
    assert for_the_test(shell_commands(blocks[1].code)[0])[-2:] == ["--max-steps", "30"]
    assert for_the_test(shell_commands(blocks[2].code)[0]) == shell_commands(blocks[2].code)[0]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_clone(tmp_path_factory.mktemp("tutorial") / "gptkit")


@pytest.mark.slow  # about 80 s of CPU: three commands and one Python session
def test_tutorial_runs_in_order_in_a_fresh_clone_and_its_cells_rerun(clone: Path) -> None:
    blocks = tutorial_blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert {b.lang for b in blocks} >= {"python", "bash"}, "the tutorial lost its blocks"
    env = clone_env(clone)
    where = "docs/tutorial.md"
    with python_session(clone, env) as session:
        for block in blocks:
            if block.lang == "python":
                for attempt in ("", " (run again)"):
                    ok, output = session.run(block.code, f"{where}:{block.line}")
                    assert ok, f"{where}, python block at line {block.line}{attempt}:\n{output}"
                continue
            for argv in shell_commands(block.code):
                done = run_command(for_the_test(argv), clone, env)
                assert done.returncode == 0, (
                    f"{where}, block at line {block.line}: `{shlex.join(argv)}` exited "
                    f"{done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
                )
    assert (clone / "runs" / "names" / "config.yaml").is_file()  # what the commands made
    assert (clone / "runs" / "names-tutorial" / "config.yaml").is_file()  # ... and Python


def train_cli(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """`uv run train ARGS` from `cwd`, in this process (these commands fail before training)."""
    monkeypatch.chdir(cwd)
    with pytest.raises(SystemExit) as exc:
        train.main(args)
    return int(exc.value.code or 0)


def test_training_the_same_run_again_is_refused_in_one_line_and_keeps_it(
    clone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Runs after the walk-through above (same clone): typing the tutorial's train command a
    # second time must not overwrite the finished run, and must say what to do instead.
    run = clone / "runs" / "names"
    if not (run / "config.yaml").is_file():
        pytest.skip("needs the walk-through's run (run the whole module)")
    before = fingerprint(run)
    assert train_cli(["--config", "configs/names.yaml"], clone, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("error: run folder runs/names already holds a run")
    assert "--resume" in err
    assert "--overwrite" in err
    assert fingerprint(run) == before


def test_the_train_command_from_another_folder_says_where_it_looked(
    clone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tutorial's paths are relative to the repository root; from docs/ the names list is
    # not found, and the one-line error names the folder the path was read from.
    docs = clone / "docs"
    assert train_cli(["--config", "../configs/names.yaml"], docs, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("error: input not found: packages/gpt-micro/src/gpt_micro/names.txt")
    assert f"relative to the current folder {docs}" in err
