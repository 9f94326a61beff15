"""A run folder belongs to one `train` process, and nothing a run left in it is overwritten.

    with claim(run_dir, resume=False, overwrite=False, info=info):
        ...  # prepare the data, build the Trainer, train

Three rules, checked before any data is read:

- One process per folder. Rank 0 holds an OS file lock (flock, through `filelock`) on
  `.train.lock` while it trains and writes its PID to `.train.pid`, so that a second process
  refuses at once and says who holds the folder. The kernel drops the lock when its holder
  ends, however it ends, so a lock left by a killed process is simply taken over.
- Earlier output is kept. A folder holding any of config.yaml, metrics.csv, tokenizer.json
  or a checkpoint (best/ alone counts) is refused unless `--resume` continues it or
  `--overwrite` first moves all of it to `NAME.old-<date-time>` beside the folder.
- `--resume` continues the run as it was configured: `resume_config` reads the folder's own
  config.yaml and applies only the overrides given now.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from gpt_tokenizers.atomic import write_text_atomic

from gpt_train import distributed
from gpt_train.checkpoint import latest_checkpoint
from gpt_train.config import TrainConfig, load_config
from gpt_train.distributed import DistInfo
from gpt_train.errors import TrainError

LOCK_FILE = ".train.lock"  # the flock target; stays in the folder (unlinking it would race)
PID_FILE = ".train.pid"  # "PID HOST" of the holder; removed when it lets go
OUTPUTS = ("config.yaml", "metrics.csv", "tokenizer.json")  # besides checkpoints/


class RunFolderLock:
    """The exclusive claim of one process on a run folder (an OS lock: it dies with us)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._lock = FileLock(self.run_dir / LOCK_FILE, timeout=0)

    def acquire(self) -> None:
        """Take the folder, or raise TrainError naming the process that holds it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise TrainError(
                f"run folder {self.run_dir} is in use by another train process "
                f"({_describe_holder(self.run_dir)}); wait for it to end or stop it, "
                "or choose another --run-dir"
            ) from None
        previous = _read_holder(self.run_dir)
        if previous is not None and previous[0] != os.getpid():
            print(
                f"note: the train process that held {self.run_dir} before "
                f"({_describe_holder(self.run_dir)}) ended without letting go; taking it over"
            )
        write_text_atomic(self.run_dir / PID_FILE, f"{os.getpid()} {socket.gethostname()}\n")

    def release(self) -> None:
        """Let the folder go (a no-op when it is not held)."""
        if not self._lock.is_locked:
            return
        (self.run_dir / PID_FILE).unlink(missing_ok=True)
        self._lock.release()


def _read_holder(run_dir: Path) -> tuple[int, str] | None:
    """(PID, host) from the PID file, or None when it is missing or unreadable."""
    try:
        pid, _, host = (run_dir / PID_FILE).read_text().strip().partition(" ")
        return int(pid), host
    except (OSError, ValueError):
        return None


def _describe_holder(run_dir: Path) -> str:
    holder = _read_holder(run_dir)
    if holder is None:
        return "PID unknown"
    pid, host = holder
    return f"PID {pid}" if host in ("", socket.gethostname()) else f"PID {pid} on {host}"


def previous_output(run_dir: str | Path) -> list[str]:
    """What an earlier run left in `run_dir` (file names and checkpoints/<name>), or []."""
    run = Path(run_dir)
    found = [name for name in OUTPUTS if (run / name).exists()]
    ckpt_dir = run / "checkpoints"
    if ckpt_dir.is_dir():  # hidden names are half-written saves, cleaned up on start
        found += sorted(f"checkpoints/{p.name}" for p in ckpt_dir.iterdir() if p.name[0] != ".")
    return found


def _listing(found: list[str]) -> str:
    return ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")


@dataclass(frozen=True)
class Spelling:
    """How the caller says "continue", "start again" and "another folder", so that a refusal
    names what the caller can type: keywords of `train()` in Python, flags on the CLI."""

    resume: str
    overwrite: str
    run_dir: str


PYTHON = Spelling(resume="resume=True", overwrite="overwrite=True", run_dir="run_dir")
CLI = Spelling(resume="--resume", overwrite="--overwrite", run_dir="--run-dir")


def check_can_start(run_dir: str | Path, resume: bool, spelling: Spelling = PYTHON) -> None:
    """Refuse to start over earlier output, or to resume a folder with nothing to resume."""
    found = previous_output(run_dir)
    if not found:
        return
    say = spelling
    if not resume:
        raise TrainError(
            f"run folder {run_dir} already holds a run ({_listing(found)}); pass {say.resume} "
            f"to continue it, {say.overwrite} to move it aside and start again, or choose "
            f"another {say.run_dir}"
        )
    if latest_checkpoint(Path(run_dir) / "checkpoints") is None:
        raise TrainError(
            f"nothing to resume in {run_dir}: it holds {_listing(found)} but no step "
            f"checkpoint (best/ keeps weights only); pass {say.overwrite} instead of "
            f"{say.resume} to move it aside and start again"
        )


def move_aside(run_dir: str | Path) -> Path:
    """Move everything in `run_dir` (but the lock) to a new `NAME.old-<date-time>` folder."""
    run = Path(run_dir)
    run = run if run.name else run.resolve()  # "." has no name to put a suffix on
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest = run.with_name(f"{run.name}.old-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = run.with_name(f"{run.name}.old-{stamp}-{n}")
    dest.mkdir()
    for entry in sorted(run.iterdir()):
        if entry.name not in (LOCK_FILE, PID_FILE):
            os.replace(entry, dest / entry.name)  # a rename: the files themselves are untouched
    return dest


@contextmanager
def claim(
    run_dir: str | Path,
    *,
    resume: bool,
    overwrite: bool,
    info: DistInfo,
    spelling: Spelling = PYTHON,
) -> Iterator[None]:
    """Hold `run_dir` for the block: lock it (rank 0), then check or move aside earlier output.

    Every rank learns whether rank 0 succeeded (the exchange doubles as a barrier after a
    move), so a refused folder stops the whole job instead of leaving ranks waiting.
    """
    if resume and overwrite:
        raise TrainError(
            f"{spelling.resume} and {spelling.overwrite} exclude each other: continue or "
            "start again"
        )
    lock = RunFolderLock(run_dir)
    error: TrainError | None = None
    if info.is_main:
        try:
            lock.acquire()
            found = previous_output(run_dir)
            if overwrite and found:
                moved = move_aside(run_dir)
                print(f"{spelling.overwrite}: moved the earlier run in {run_dir} to {moved}")
            else:
                check_can_start(run_dir, resume, spelling)
        except TrainError as exc:
            error = exc
    if distributed.any_across(error is not None, info):
        lock.release()
        raise error or TrainError(f"rank 0 refused the run folder {run_dir} (see its message)")
    try:
        yield
    finally:
        lock.release()


def resume_config(
    run_dir: str | Path, config: str | Path | None, overrides: Sequence[str]
) -> tuple[TrainConfig, str | None]:
    """The config a resumed run continues with, and a note when `config` says otherwise.

    The run's own config.yaml is the base and only `overrides` change it; a `config` file
    given as well is used only when the folder has no config.yaml yet (a new run).
    """
    saved = Path(run_dir) / "config.yaml"
    if not saved.is_file():
        if config is None:
            raise TrainError(f"nothing to resume in {run_dir} (no config.yaml); pass --config")
        return load_config(config, overrides), None
    cfg = load_config(saved, overrides)
    if config is None:
        return cfg, None
    differs = _differences(cfg, load_config(config, overrides))
    if not differs:
        return cfg, None
    return cfg, (
        f"note: resuming with {saved}, the run's own config; {config} differs in "
        f"{_listing(differs)}, which stays as the run had it (use --set to change a value)"
    )


def _differences(a: TrainConfig, b: TrainConfig) -> list[str]:
    """`section.key` names whose values differ between two configs."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{s}.{k}" for s in da for k in da[s] if da[s][k] != db[s][k]]


def check_same_model(run_dir: str | Path, cfg: TrainConfig) -> None:
    """A resumed run keeps its model section and optimizer: name the first key that would
    change."""
    saved = Path(run_dir) / "config.yaml"
    if not saved.is_file():
        return  # the checkpoint's own model config is still checked when it is loaded
    earlier = load_config(saved)
    before: dict[str, Any] = dataclasses.asdict(earlier.model)
    now = dataclasses.asdict(cfg.model)
    for key, value in now.items():
        if before.get(key) != value:
            raise TrainError(
                f"model.{key} = {value!r}, but the run in {run_dir} was trained with "
                f"{before.get(key)!r} ({saved}): a different model section cannot continue "
                "its checkpoints; drop that change or choose another --run-dir"
            )
    name, was = cfg.optim.name, earlier.optim.name
    if name != was:  # the optimizer's saved state has another shape
        raise TrainError(
            f"optim.name = {name!r}, but the run in {run_dir} was trained with {was!r} "
            f"({saved}): its optimizer state cannot continue under another optimizer"
        )
