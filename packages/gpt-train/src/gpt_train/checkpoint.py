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
real name; pruning renames a folder away before deleting it, for the same reason.
state.pt only holds tensors and plain containers and is read with
torch.load(weights_only=True): loading a checkpoint never runs pickled code.

Nothing is trusted unread: `verify` checks meta.json, the safetensors header against the
file's size and state.pt before a resume uses them, and `Checkpointer.latest` passes over
a broken checkpoint (saying which and why) to the newest good one. Weights holding NaN or
inf are never saved (`NonFiniteWeightsError`).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import sys
import time
import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol

import torch
from gpt_core import GPTConfig
from gpt_tokenizers.atomic import TEMP_PREFIX, atomic_path, clean_leftovers
from safetensors import SafetensorError
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


def step_folders(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """Every folder named step-N, complete or not, oldest first (hidden temporaries skipped)."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        m = STEP_RE.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """Complete step checkpoints, oldest first."""
    return [(s, p) for s, p in step_folders(ckpt_dir) if is_complete(p)]


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The newest complete step checkpoint, or None (files present; see `verify`)."""
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def prune(ckpt_dir: Path, keep_last: int, newest: int | None = None) -> None:
    """Delete the step folders older than the newest `keep_last` complete ones.

    Only steps up to `newest` (the one just saved) count: a later folder is left from before
    a resume fell back past it, and is replaced when training gets there. Incomplete folders
    older than the newest go too. Each is renamed to a hidden temporary name, then deleted:
    a kill midway leaves a leftover that listing ignores and `clean_leftovers` removes, never
    a half checkpoint under a real name. best/ is kept separately.
    """
    folders = [(s, p) for s, p in step_folders(ckpt_dir) if newest is None or s <= newest]
    kept = [s for s, p in folders if is_complete(p)][-keep_last:]
    if not kept:
        return
    for step, path in folders:
        if step < kept[0] or (step < kept[-1] and not is_complete(path)):
            doomed = path.with_name(f"{TEMP_PREFIX}pruned-{path.name}-{os.getpid()}")
            os.replace(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)


# -- reading a checkpoint, and verifying it before trusting it -------------------------


class CheckpointError(TrainError):
    """A checkpoint file is missing, truncated, corrupt or holds something we never write."""


def read_meta(path: Path) -> dict[str, Any]:
    """meta.json of checkpoint `path` (a JSON object naming its step)."""
    file = path / "meta.json"
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path} is not a checkpoint (no meta.json)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{file} is corrupt (not JSON: {exc})") from None
    step = meta.get("step") if isinstance(meta, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{file} is corrupt: expected a JSON object with a step number")
    return dict(meta)


def check_weights(path: Path) -> None:
    """model.safetensors of `path` is whole: its header parses and covers the file exactly.

    Reads only the header, so it is cheap; truncation anywhere shows up as a size mismatch.
    """
    file = path / "model.safetensors"
    if not file.is_file():
        raise CheckpointError(f"{path} is not a checkpoint (no model.safetensors)")
    size = file.stat().st_size
    with file.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        raw = f.read(n) if 0 < n <= size - 8 else b""
    try:
        header = json.loads(raw)
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise CheckpointError(f"{file} is truncated or corrupt (unreadable header)") from None
    expected = 8 + n + max(ends, default=0)
    if size != expected:
        raise CheckpointError(
            f"{file} is truncated or corrupt ({size:,} bytes; its header describes {expected:,})"
        )


def load_weights(model: nn.Module, path: Path, device: str | torch.device = "cpu") -> None:
    """Load model.safetensors of checkpoint `path` into `model` (strict: same tensors)."""
    check_weights(path)
    file = path / "model.safetensors"
    try:
        missing, unexpected = load_model(unwrap(model), str(file), strict=False, device=str(device))
    except SafetensorError as exc:
        raise CheckpointError(f"{file} is truncated or corrupt ({exc})") from None
    if missing or unexpected:
        raise TrainError(
            f"{file} does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )


STATE_KEYS = ("optimizer", "scaler", "sampler", "rng", "step", "best_val_loss", "elapsed_s")


def load_state(path: Path) -> dict[str, Any]:
    """state.pt of checkpoint `path`, read without executing pickled code."""
    file = path / "state.pt"
    if not file.is_file():
        raise CheckpointError(f"{path} holds weights only (no state.pt); it cannot be resumed")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, i.e. running the file's code:
        # never pass that on. A whole zip with a refused pickle holds foreign objects.
        if zipfile.is_zipfile(file):
            raise CheckpointError(
                f"{file} holds something other than tensors and plain containers; refused "
                "(checkpoints are never unpickled)"
            ) from None
        raise CheckpointError(f"{file} is truncated or corrupt (not a torch file)") from None
    except Exception:  # torch reports a broken zip as RuntimeError, OSError, EOFError...
        raise CheckpointError(f"{file} is truncated or corrupt (unreadable)") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{file} is corrupt: expected a dict of training state")
    return state


def verify(path: Path, *, resumable: bool) -> dict[str, Any] | None:
    """Check checkpoint `path` before trusting it (raises CheckpointError naming the fault).

    meta.json parses and names a step, and model.safetensors is whole; with `resumable`
    state.pt must also load (weights-only) with every part: that state is returned.
    """
    read_meta(path)
    check_weights(path)
    if not resumable:
        return None
    state = load_state(path)
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path / 'state.pt'} is corrupt: it lacks {', '.join(missing)}")
    return state


def warn_skipped(path: Path, reason: CheckpointError) -> None:
    """The one line printed for each checkpoint passed over."""
    print(f"skipping checkpoint {path}: {reason}", file=sys.stderr, flush=True)


def weights_finite(model: nn.Module) -> bool:
    """Whether every floating tensor of the model is finite."""
    tensors = unwrap(model).state_dict().values()
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


class NonFiniteWeightsError(TrainError):
    """Raised instead of saving weights holding NaN or inf (the run has diverged)."""


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
        self._verified: tuple[Path, dict[str, Any]] | None = None  # see latest()
        if info.is_main:
            clean_leftovers(folder)  # saves killed midway

    def latest(self) -> Path | None:
        """The newest step checkpoint that verifies; says which it skipped and why.

        None when there is no step folder at all; CheckpointError when every one is broken
        (starting afresh would overwrite them). Verifying means loading state.pt: it is kept
        for the `load` of the same folder that normally follows, so it is read only once.
        """
        self._verified = None
        problems: list[CheckpointError] = []
        for _, path in reversed(step_folders(self.folder)):
            try:
                state = verify(path, resumable=True)
            except CheckpointError as exc:
                if self.info.is_main:
                    warn_skipped(path, exc)
                problems.append(exc)
                continue
            assert state is not None
            self._verified = (path, state)
            return path
        if problems:
            raise CheckpointError(
                f"no usable checkpoint in {self.folder}: all {len(problems)} are broken "
                f"(the newest: {problems[0]})"
            )
        return None

    def load_latest(self) -> tuple[Path, TrainState] | None:
        """Restore the newest good checkpoint (see `latest`): its folder and TrainState."""
        path = self.latest()
        return None if path is None else (path, self.load(path))

    def save(self, state: TrainState) -> Path | None:
        """A full checkpoint at `state.step`, then prune to keep_last (all ranks call).

        Raises NonFiniteWeightsError, writing nothing, if the weights hold NaN or inf.
        """
        self._check_finite(state)
        state.rng = capture_rng(self.info)
        if not self.info.is_main:
            return None
        payload: dict[str, Any] = {name: part.state_dict() for name, part in self.parts.items()}
        # Every TrainState field, by name: a field added to TrainState is saved and restored
        # with no change here (meta.json repeats some of them for people and tools).
        payload.update({f.name: getattr(state, f.name) for f in fields(TrainState)})
        payload["world_size"] = self.info.world_size
        path = save_checkpoint(
            self.folder, step_name(state.step), self.model, self._meta(state), payload
        )
        prune(self.folder, self.keep_last, newest=state.step)
        return path

    def save_best(self, state: TrainState) -> None:
        """The current weights as best/ (rank 0; no state.pt: it is not for resuming)."""
        self._check_finite(state)
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
        verified, self._verified = self._verified, None
        payload = verified[1] if verified and verified[0] == path else verify(path, resumable=True)
        assert payload is not None
        load_weights(self.model, path, self.info.device)
        for name, part in self.parts.items():
            part.load_state_dict(payload[name])
        # Checkpoints saved before every field went into state.pt kept these in meta.json.
        older = {
            "tokens_seen": meta.get("tokens", 0),
            "train_loss": meta.get("train_loss"),
            "val_loss": meta.get("val_loss"),
        }
        saved = {**older, **payload}
        state = TrainState(**{f.name: saved[f.name] for f in fields(TrainState) if f.name in saved})
        restore_rng(payload["rng"], self.info, reseed=self.seed + 1 + state.step)
        return state

    def _check_finite(self, state: TrainState) -> None:
        if not weights_finite(self.model):
            raise NonFiniteWeightsError(
                f"refusing to save non-finite weights at step {state.step} (NaN or inf)"
            )

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
