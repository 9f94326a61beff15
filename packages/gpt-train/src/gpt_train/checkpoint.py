"""Checkpoint folders: weights as safetensors, the rest as a weights-only torch file.

    checkpoints/step-0000500/
        model.safetensors   the model's tensors (tied weights stored once)
        state.pt            optimizer, grad scaler, data sampler, RNG states, counters
        meta.json           step, losses, the GPTConfig, wall time
    checkpoints/best/       the weights with the lowest validation loss so far (no state.pt)

A checkpoint is written into a hidden temporary folder and renamed into place, so a crash
or kill mid-save never leaves a half-written folder under a real name. state.pt only holds
tensors and plain containers and is read with torch.load(weights_only=True): loading a
checkpoint never runs pickled code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn

from gpt_train.errors import TrainError

STEP_RE = re.compile(r"^step-(\d+)$")
BEST = "best"


def step_name(step: int) -> str:
    return f"step-{step:07d}"


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module  # DistributedDataParallel
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod  # torch.compile
        else:
            return model


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def save_checkpoint(
    ckpt_dir: Path,
    name: str,
    model: nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint `name` atomically (temp folder + rename) and return its path."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        save_model(unwrap(model), str(tmp / "model.safetensors"))
        if state is not None:
            torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        for f in tmp.iterdir():
            _fsync(f)
        final = ckpt_dir / name
        if final.exists():  # replacing (e.g. best): move the old one aside first
            old = ckpt_dir / f".old-{name}-{os.getpid()}"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def is_complete(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / "model.safetensors").is_file()


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """Complete step checkpoints, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        m = STEP_RE.match(p.name)
        if m and p.is_dir() and is_complete(p):
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def prune(ckpt_dir: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` step checkpoints (best/ is kept separately)."""
    for _, path in list_checkpoints(ckpt_dir)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def clean_partials(ckpt_dir: Path) -> None:
    """Remove leftovers of saves that were killed midway."""
    if ckpt_dir.is_dir():
        for p in ckpt_dir.iterdir():
            if p.name.startswith((".tmp-", ".old-")):
                shutil.rmtree(p, ignore_errors=True)


def read_meta(path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((path / "meta.json").read_text())
    return meta


def load_weights(model: nn.Module, path: Path, device: str | torch.device = "cpu") -> None:
    """Load model.safetensors of checkpoint `path` into `model` (strict: same tensors)."""
    file = path / "model.safetensors"
    if not file.is_file():
        raise TrainError(f"{path} is not a checkpoint (no model.safetensors)")
    missing, unexpected = load_model(unwrap(model), str(file), strict=False, device=str(device))
    if missing or unexpected:
        raise TrainError(
            f"{file} does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )


def load_state(path: Path) -> dict[str, Any]:
    """state.pt of checkpoint `path`, read without executing pickled code."""
    file = path / "state.pt"
    if not file.is_file():
        raise TrainError(f"{path} holds weights only (no state.pt); it cannot be resumed")
    state: dict[str, Any] = torch.load(file, map_location="cpu", weights_only=True)
    return state
