"""The runs the playground may open: folders directly under one runs directory, and nothing
else (a name from the page is matched against that listing, never joined into a path).

Loaded checkpoints are kept in a small cache; each holds a second copy of the model for the
attention tracer, whose hooks must not see another request's generation.
"""

from __future__ import annotations

import copy
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpt_eval.errors import EvalError

if TYPE_CHECKING:
    from gpt_core import GPT
    from gpt_train.runs import LoadedRun

MAX_CURVE_POINTS = 400  # the training curves sent to the page are thinned to this many
MAX_CONFIG_BYTES = 64_000  # config.yaml is shown whole up to this size


class NotFoundError(EvalError):
    """A run or checkpoint the page asked for is not one the catalog offers."""


@dataclass
class OpenRun:
    """A loaded checkpoint: the run (its model serves generation) and the tracer's copy."""

    name: str
    checkpoint: str
    run: LoadedRun
    tracer_model: GPT
    tracer_lock: threading.Lock = field(default_factory=threading.Lock)


def is_run_folder(path: Path) -> bool:
    """Whether `path` looks like a folder written by `train` (config.yaml + tokenizer.json)."""
    return (path / "config.yaml").is_file() and (path / "tokenizer.json").is_file()


class RunCatalog:
    """The run folders under `root` (or only `only`, one folder name under it)."""

    def __init__(self, root: Path, only: str | None = None, cache_size: int = 2) -> None:
        if not root.is_dir():
            raise EvalError(f"runs directory not found: {root}")
        self.root = root.resolve()
        self.only = only
        if only is not None and not is_run_folder(self.root / only):
            raise EvalError(
                f"{root / only} is not a run folder (it needs config.yaml and tokenizer.json)"
            )
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], OpenRun] = OrderedDict()
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The run folders offered, sorted by name."""
        if self.only is not None:
            return [self.only]
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_run_folder(p))

    def folder(self, name: str) -> Path:
        """The folder of run `name`, which must be one of names() (no other path is opened)."""
        if name not in self.names():
            raise NotFoundError(f"no run named {name!r} under {self.root}")
        return self.root / name

    def checkpoints(self, name: str) -> list[str]:
        """The checkpoint names of run `name`: latest, best, step-N."""
        from gpt_train.runs import available_checkpoints

        return available_checkpoints(self.folder(name))

    def open(self, name: str, checkpoint: str) -> OpenRun:
        """Load (or reuse) run `name` at `checkpoint`, which must be one it lists."""
        from gpt_train.runs import load_run, resolve_checkpoint

        folder = self.folder(name)
        available = self.checkpoints(name)
        if checkpoint not in available:
            listed = ", ".join(available) or "none yet"
            raise NotFoundError(f"run {name!r} has no checkpoint {checkpoint!r} ({listed})")
        # "latest" moves while a run trains: key the cache on the folder it names now.
        key = (name, str(resolve_checkpoint(folder, checkpoint)))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            run = load_run(folder, checkpoint=key[1], device="cpu")
            opened = OpenRun(name, checkpoint, run, copy.deepcopy(run.model))
            self._cache[key] = opened
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return opened

    def card(self, name: str, checkpoint: str) -> dict[str, Any]:
        """What the page's model card shows for run `name` at `checkpoint`."""
        from gpt_tokenizers.loading import tokenizer_kind
        from gpt_tokenizers.render import COLOURS, ansi256_hex

        folder = self.folder(name)
        card: dict[str, Any] = {
            "name": name,
            "checkpoints": self.checkpoints(name),
            "config_yaml": (folder / "config.yaml").read_text(encoding="utf-8")[:MAX_CONFIG_BYTES],
            "colours": [ansi256_hex(c) for c in COLOURS],
            **training_curves(folder / "metrics.csv"),
        }
        opened = self.open(name, checkpoint)
        run, tok = opened.run, opened.run.tokenizer
        card.update(
            checkpoint=checkpoint,
            step=run.step,
            parameters=run.model.num_parameters(),
            model=run.model.config.to_dict(),
            tokenizer={
                "type": tokenizer_kind(tok),
                "vocab_size": tok.vocab_size,
                "eot_id": tok.eot_id,
            },
        )
        return card


def _finite(values: Any) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def training_curves(path: Path) -> dict[str, Any]:
    """Steps, train and val loss from a metrics.csv (thinned), and the best val loss; empty
    when the run has not logged yet (a card is still shown)."""
    from gpt_eval.plots import load_metrics

    try:
        frame = load_metrics(path)
    except EvalError as exc:
        return {"curves": None, "best_val_loss": None, "metrics_note": str(exc)}
    every = max(1, -(-len(frame) // MAX_CURVE_POINTS))
    train = frame[frame["train_loss"].notna()].iloc[::every]
    val = frame[frame["val_loss"].notna()]
    best = float(val["val_loss"].min()) if len(val) else None
    return {
        "curves": {
            "train": {"step": _finite(train["step"]), "loss": _finite(train["train_loss"])},
            "val": {"step": _finite(val["step"]), "loss": _finite(val["val_loss"])},
        },
        "best_val_loss": best if best is not None and math.isfinite(best) else None,
        "metrics_note": None,
    }
