"""Where the metrics rows of a run go: metrics.csv always, plus the dashboards of log.backends.

metrics.csv is the source of truth; TensorBoard and W&B are live views of the same rows.
`RunLogger.log` is the one place a row is written, to every backend, and only once per
step: a row metrics.csv refuses (a step it already holds) goes nowhere. Each dashboard
library is imported only when its backend is enabled; both come with the `dashboards`
extra (`pip install 'gpt-train[dashboards]'`, or `uv sync --group dashboards`).

On resume metrics.csv drops the rows logged after the checkpoint (they are logged again);
the dashboards follow it: TensorBoard through `purge_step` (a reader discards the older
events from that step on), W&B by continuing the same run id.
"""

from __future__ import annotations

import contextlib
import importlib
import netrc
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from gpt_tokenizers.atomic import write_text_atomic

from gpt_train.config import TrainConfig
from gpt_train.errors import TrainError
from gpt_train.metrics import MetricsLogger

# metrics.csv column -> the dashboards' scalar name (grouped as TensorBoard and W&B show them)
SCALARS = {
    "train_loss": "train/loss",
    "val_loss": "val/loss",
    "lr": "train/lr",
    "grad_norm": "train/grad_norm",
    "tokens": "train/tokens",
    "tokens_per_sec": "perf/tokens_per_sec",
    "mfu": "perf/mfu",
    "peak_mem_mb": "perf/peak_mem_mb",
    "elapsed_s": "perf/elapsed_s",
}
TENSORBOARD_DIR = "tensorboard"  # inside the run folder
WANDB_DIR = "wandb"  # inside the run folder; wandb keeps its runs there
WANDB_ID_FILE = "gptkit-run-id"  # in WANDB_DIR: the run id a resume continues


class Backend(Protocol):
    """A destination for metrics rows (the keys of metrics.COLUMNS; absent values are None)."""

    def log(self, row: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The row's values as named scalars, leaving out the empty ones (val loss between evals)."""
    return {tag: float(row[col]) for col, tag in SCALARS.items() if row.get(col) is not None}


def _require(module: str, backend: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TrainError(
            f"log.backends includes {backend}, but its package is not installed: install "
            "the dashboards extra (uv sync --group dashboards, or pip install "
            "'gpt-train[dashboards]'), or remove it from log.backends"
        ) from None


MODULES = {"tensorboard": ("tensorboard", "torch.utils.tensorboard"), "wandb": ("wandb",)}


def check_available(backends: Sequence[str]) -> None:
    """Import what the enabled backends need now, before a run writes anything: a missing
    package is one TrainError line, and the run folder stays as it was."""
    for name in backends:
        for module in MODULES.get(name, ()):
            _require(module, name)


class TensorBoardBackend:
    """Scalars in event files under RUN/tensorboard (`tensorboard --logdir RUN/tensorboard`)."""

    def __init__(self, log_dir: Path, purge_step: int) -> None:
        check_available(["tensorboard"])  # torch's writer needs the package: say so plainly
        writer_module = importlib.import_module("torch.utils.tensorboard")
        # purge_step: readers drop the events of earlier sessions from this step on
        self.writer = writer_module.SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def log(self, row: Mapping[str, Any]) -> None:
        step = int(row["step"])
        for tag, value in scalars(row).items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()  # live: a dashboard sees the row as metrics.csv does

    def close(self) -> None:
        self.writer.close()


def wandb_mode() -> str | None:
    """WANDB_MODE when the user set it; else online with credentials, offline without.

    Credentials are WANDB_API_KEY or a netrc entry for the W&B host (what `wandb login`
    writes); without them wandb would stop to ask for a login, so the run stays offline
    (`wandb sync RUN/wandb/offline-run-*` uploads it later).
    """
    if os.environ.get("WANDB_MODE"):
        return None  # wandb reads it itself
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    with contextlib.suppress(OSError, netrc.NetrcParseError):
        if netrc.netrc(os.environ.get("NETRC")).authenticators(host):
            return "online"
    return "offline"


class WandbBackend:
    """A W&B run in RUN/wandb named after the run folder; a resume continues the same run."""

    def __init__(self, run_dir: Path, cfg: TrainConfig, resumed: bool) -> None:
        wandb = _require("wandb", "wandb")
        folder = run_dir / WANDB_DIR
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if resumed and id_file.is_file() else ""
        if not run_id:
            run_id = secrets.token_hex(4)
            write_text_atomic(id_file, run_id + "\n")
        try:
            self.run = wandb.init(
                project=cfg.log.wandb_project,
                name=run_dir.name,
                id=run_id,
                resume="allow",
                dir=str(run_dir),
                config=cfg.to_dict(),
                mode=wandb_mode(),
                settings=wandb.Settings(console="off"),  # leave the terminal (tqdm) alone
            )
        except wandb.errors.Error as exc:  # a refused login, a bad project name, ...
            raise TrainError(f"log.backends wandb: {exc}") from None

    def log(self, row: Mapping[str, Any]) -> None:
        self.run.log(scalars(row), step=int(row["step"]))

    def close(self) -> None:
        self.run.finish()


class RunLogger:
    """Every metrics row to metrics.csv and then to each dashboard; see the module doc."""

    def __init__(self, csv: MetricsLogger, dashboards: Sequence[Backend] = ()) -> None:
        self.csv = csv
        self.dashboards = list(dashboards)

    def log(self, row: Mapping[str, Any]) -> None:
        if self.csv.log(row):
            for backend in self.dashboards:
                backend.log(row)

    def close(self) -> None:
        try:
            for backend in self.dashboards:
                backend.close()
        finally:
            self.csv.close()


def open_run_logger(run_dir: Path, cfg: TrainConfig, resume_from: int | None) -> RunLogger:
    """metrics.csv and the dashboards named in cfg.log.backends, continuing after resume_from
    (the step of the checkpoint a resumed run starts from; None for a new run)."""
    dashboards: list[Backend] = []
    try:
        for name in cfg.log.backends:
            if name == "tensorboard":
                purge = (resume_from or 0) + 1  # a new run hides any old events in the folder
                dashboards.append(TensorBoardBackend(run_dir / TENSORBOARD_DIR, purge))
            elif name == "wandb":
                dashboards.append(WandbBackend(run_dir, cfg, resumed=resume_from is not None))
    except BaseException:
        for backend in dashboards:
            backend.close()
        raise
    csv = MetricsLogger(run_dir / "metrics.csv", resume_from=resume_from)
    return RunLogger(csv, dashboards)
