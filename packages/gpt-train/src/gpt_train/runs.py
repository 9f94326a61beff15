"""Open a run folder written by `train`: its model (from any checkpoint), tokenizer, config.

run = load_run("runs/tiny", checkpoint="best")
out = generate(run.model, idx, SamplingConfig(max_new_tokens=50)); run.tokenizer.decode(...)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gpt_train import checkpoint as ckpt
from gpt_train.config import TrainConfig, load_config
from gpt_train.errors import TrainError
from gpt_train.precision import pick_device

if TYPE_CHECKING:
    from gpt_core import GPT
    from gpt_tokenizers import Tokenizer


@dataclass
class LoadedRun:
    """A trained model ready to use, with what it was trained with."""

    model: GPT  # eval mode, on the requested device
    tokenizer: Tokenizer
    config: TrainConfig
    step: int
    checkpoint_path: Path


def available_checkpoints(run_dir: str | Path) -> list[str]:
    """Names accepted by `load_run(checkpoint=...)` for this run: latest, best, step-N."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    steps = [f"step-{s}" for s, _ in ckpt.list_checkpoints(ckpt_dir)]
    names = ["latest"] if steps else []
    if ckpt.is_complete(ckpt_dir / ckpt.BEST):
        names.append("best")
    return names + steps


def resolve_checkpoint(run_dir: str | Path, checkpoint: str = "latest") -> Path:
    """The checkpoint folder named by `checkpoint` (latest | best | step-N | a folder path).

    The folder is verified (meta.json, the weights file whole) before it is returned: a
    named one that fails is a one-line error; "latest" passes over broken step checkpoints,
    saying which and why, to the newest good one (or best/ when no step one is left).
    """
    run = Path(run_dir)
    ckpt_dir = run / "checkpoints"
    as_path = Path(checkpoint)
    if checkpoint not in ("latest", "best") and as_path.is_dir():
        return _verified(as_path)
    available = ", ".join(available_checkpoints(run)) or "none"
    if checkpoint == "latest":
        candidates = [p for _, p in reversed(ckpt.step_folders(ckpt_dir))]
        if (ckpt_dir / ckpt.BEST).is_dir():
            candidates.append(ckpt_dir / ckpt.BEST)
        skipped = []
        for path in candidates:
            try:
                return _verified(path)
            except ckpt.CheckpointError as exc:
                ckpt.warn_skipped(path, exc)
                skipped.append(path.name)
        if skipped:
            raise TrainError(f"run {run} has no usable checkpoint ({', '.join(skipped)} skipped)")
        raise TrainError(f"run {run} has no checkpoints yet")
    if checkpoint == "best":
        if (ckpt_dir / ckpt.BEST).is_dir():
            return _verified(ckpt_dir / ckpt.BEST)
        raise TrainError(f"run {run} has no best checkpoint (available: {available})")
    m = re.fullmatch(r"step-?(\d+)", checkpoint)
    if m:
        wanted = int(m.group(1))
        for step, path in ckpt.step_folders(ckpt_dir):
            if step == wanted:
                return _verified(path)
    raise TrainError(
        f"unknown checkpoint {checkpoint!r} in run {run} (available: {available}; "
        "or give a checkpoint folder path)"
    )


def _verified(path: Path) -> Path:
    ckpt.verify(path, resumable=False)
    return path


def load_run(run_dir: str | Path, checkpoint: str = "latest", device: str = "cpu") -> LoadedRun:
    """Load a run's model from `checkpoint` onto `device`, in eval mode, with its tokenizer."""
    from gpt_core import GPT, GPTConfig
    from gpt_tokenizers import load_tokenizer

    run = Path(run_dir)
    if not run.is_dir():
        raise TrainError(f"run folder not found: {run}")
    for name in ("config.yaml", "tokenizer.json"):
        if not (run / name).is_file():
            raise TrainError(f"{run} is not a run folder (no {name}); was it written by `train`?")
    path = resolve_checkpoint(run, checkpoint)
    meta = ckpt.read_meta(path)
    config = load_config(run / "config.yaml")
    try:
        gpt_config = GPTConfig.from_dict(meta["model_config"])
    except (KeyError, ValueError) as exc:
        raise TrainError(f"{path}/meta.json has no usable model_config: {exc}") from exc
    device = pick_device(device, source=f"--device {device}")
    model = GPT(gpt_config).to(device)
    ckpt.load_weights(model, path, device)
    model.eval()
    return LoadedRun(
        model=model,
        tokenizer=load_tokenizer(run / "tokenizer.json"),
        config=config,
        step=int(meta.get("step", 0)),
        checkpoint_path=path,
    )
