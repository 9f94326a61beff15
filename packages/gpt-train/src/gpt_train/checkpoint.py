"""Checkpoint folders: weights as safetensors, the rest as a weights-only torch file.

    checkpoints/step-0000500/
        model.safetensors   the model's tensors (tied weights stored once)
        state.pt            optimizer, grad scaler, data sampler, RNG states, counters
        meta.json           step, losses, the GPTConfig, wall time
    checkpoints/best/       the weights with the lowest validation loss so far (no state.pt)

`Checkpointer` is the one place that knows what a run's state is made of: it saves and
restores the model, optimizer, grad scaler, data sampler and TrainState together. A
checkpoint is written through gpt_tokenizers' `atomic_path` (a hidden temporary folder
renamed into place), so a crash or kill mid-save never leaves a half-written folder under a
real name. state.pt only holds tensors and plain containers and is read with
torch.load(weights_only=True): loading a checkpoint never runs pickled code.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

import torch
from gpt_core import GPTConfig
from gpt_tokenizers.atomic import atomic_path, clean_leftovers
from safetensors.torch import load_model, save_model
from torch import nn

from gpt_train.distributed import DistInfo
from gpt_train.errors import TrainError
from gpt_train.state import TrainState, capture_rng, restore_rng

STEP_RE = re.compile(r"^step-(\d+)$")
BEST = "best"


def step_name(step: int) -> str:
    """step-0000500: zero-padded so folder names sort by step."""
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


def save_checkpoint(
    ckpt_dir: Path,
    name: str,
    model: nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint `name` atomically (weights, optional state.pt, meta) and return it."""
    final = ckpt_dir / name
    with atomic_path(final) as tmp:
        tmp.mkdir()
        save_model(unwrap(model), str(tmp / "model.safetensors"))
        if state is not None:
            torch.save(state, tmp / "state.pt")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return final


def is_complete(path: Path) -> bool:
    """A checkpoint folder with its weights and meta (a step one also has state.pt)."""
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
    """The newest complete step checkpoint, or None."""
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def prune(ckpt_dir: Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` step checkpoints (best/ is kept separately)."""
    for _, path in list_checkpoints(ckpt_dir)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def read_meta(path: Path) -> dict[str, Any]:
    """meta.json of checkpoint `path`."""
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


class Stateful(Protocol):
    """Anything saved by its state_dict (the optimizer, the scaler, the sampler)."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], /) -> None: ...


class Checkpointer:
    """Saves and restores everything stateful of one run, in `folder` (run/checkpoints).

    All ranks call `save` (it gathers every rank's RNG state); rank 0 writes. `load`
    restores the model, optimizer, scaler, sampler and generators and returns the
    TrainState to continue from.
    """

    def __init__(
        self,
        folder: Path,
        *,
        model: nn.Module,
        optimizer: Stateful,
        scaler: Stateful,
        sampler: Stateful,
        model_config: GPTConfig,
        info: DistInfo,
        keep_last: int,
        seed: int,
    ) -> None:
        self.folder = folder
        self.model = model
        self.parts = {"optimizer": optimizer, "scaler": scaler, "sampler": sampler}
        self.model_config = model_config
        self.info = info
        self.keep_last = keep_last
        self.seed = seed
        if info.is_main:
            clean_leftovers(folder)  # saves killed midway

    def latest(self) -> Path | None:
        """The newest complete step checkpoint, or None."""
        return latest_checkpoint(self.folder)

    def save(self, state: TrainState) -> Path | None:
        """A full checkpoint at `state.step`, then prune to keep_last (all ranks call)."""
        state.rng = capture_rng(self.info)
        if not self.info.is_main:
            return None
        payload: dict[str, Any] = {name: part.state_dict() for name, part in self.parts.items()}
        payload.update(
            rng=state.rng,
            step=state.step,
            best_val_loss=state.best_val_loss,
            elapsed_s=state.elapsed_s,
            world_size=self.info.world_size,
        )
        path = save_checkpoint(
            self.folder, step_name(state.step), self.model, self._meta(state), payload
        )
        prune(self.folder, self.keep_last)
        return path

    def save_best(self, state: TrainState) -> None:
        """The current weights as best/ (rank 0; no state.pt: it is not for resuming)."""
        if self.info.is_main:
            save_checkpoint(self.folder, BEST, self.model, self._meta(state))

    def load(self, path: Path) -> TrainState:
        """Restore every part from checkpoint `path`; returns its TrainState."""
        meta = read_meta(path)
        if meta.get("model_config") != self.model_config.to_dict():
            raise TrainError(
                f"{path} was trained with a different model section; resume with the run's "
                f"own config ({self.folder.parent / 'config.yaml'})"
            )
        load_weights(self.model, path, self.info.device)
        payload = load_state(path)
        for name, part in self.parts.items():
            part.load_state_dict(payload[name])
        state = TrainState(
            step=int(payload["step"]),
            tokens_seen=int(meta.get("tokens", 0)),
            best_val_loss=payload["best_val_loss"],
            elapsed_s=float(payload["elapsed_s"]),
            train_loss=meta.get("train_loss"),
            val_loss=meta.get("val_loss"),
            rng=payload["rng"],
        )
        restore_rng(payload["rng"], self.info, reseed=self.seed + 1 + state.step)
        return state

    def _meta(self, state: TrainState) -> dict[str, Any]:
        return {
            "step": state.step,
            "tokens": state.tokens_seen,
            "train_loss": state.train_loss,
            "val_loss": state.val_loss,
            "best_val_loss": state.best_val_loss,
            "model_config": self.model_config.to_dict(),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
