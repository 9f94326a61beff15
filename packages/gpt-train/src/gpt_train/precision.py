"""Device and precision choices, the autocast context, the GradScaler and peak FLOP/s.

`auto` precision: bf16 autocast on CUDA devices that support it, fp16 autocast with a
GradScaler on older CUDA devices, fp32 on CPU (bf16 matmuls are far slower than fp32 on CPUs
without native bf16 units) and on MPS. An explicit choice is honoured on any device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from gpt_train.errors import TrainError


def pick_device(name: str = "auto", *, source: str | None = None) -> str:
    """cuda > mps > cpu for "auto"; an explicit device (cuda:N too) must exist. The one
    place a device is chosen and checked; `source` names where the value came from in the
    error (default: the config key train.device)."""
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    where = source or f"train.device = {name!r}"
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise TrainError(
            f"{where}: no CUDA device is available here (torch.cuda.is_available() is False); "
            "use auto or cpu"
        )
    if kind == "mps" and not has_mps:
        raise TrainError(f"{where}: MPS is not available here; use auto or cpu")
    if kind not in ("cpu", "cuda", "mps") or (kind != "cuda" and name != kind):
        raise TrainError(f"{where}: unknown device (allowed: auto, cpu, cuda, cuda:N, mps)")
    return name


def pick_precision(name: str, device_type: str) -> str:
    """Resolve "auto" to fp32 | bf16 | fp16 for `device_type`."""
    if name != "auto":
        if name not in ("fp32", "bf16", "fp16"):
            raise TrainError(f"unknown precision {name!r} (allowed: auto, fp32, bf16, fp16)")
        return name
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


@dataclass
class Precision:
    """What a training step needs to run in the chosen precision."""

    name: str  # fp32 | bf16 | fp16
    device_type: str
    scaler: torch.amp.GradScaler

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.name == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.name == "bf16" else torch.float16
        return torch.autocast(device_type=self.device_type, dtype=dtype)


def make_precision(name: str, device_type: str) -> Precision:
    resolved = pick_precision(name, device_type)
    # Loss scaling only matters for fp16 (its small exponent range underflows gradients);
    # a disabled scaler is a no-op passthrough, so the loop has one code path.
    scaler = torch.amp.GradScaler(device_type, enabled=resolved == "fp16")
    return Precision(resolved, device_type, scaler)


# Dense peak FLOP/s per device (no sparsity), for MFU. The CPU figure is what a large fp32
# matmul reaches on the 2-core development machine; set train.peak_flops for yours.
CPU_PEAK_FLOPS = 180e9
# The first fragment found in the lower-cased device name wins, so specific names come first
# ("h100 pcie" before "h100", "l40s" before "l40" before "l4").
_CUDA_PEAKS: list[tuple[str, float, float]] = [  # (name fragment, bf16/fp16, fp32 / tf32)
    ("h200", 989e12, 494e12),  # and GH200
    ("h100 pcie", 756e12, 378e12),
    ("h100 nvl", 835e12, 418e12),
    ("h100", 989e12, 494e12),  # SXM (reported as "NVIDIA H100 80GB HBM3")
    ("h800", 989e12, 494e12),
    ("a100", 312e12, 156e12),
    ("a800", 312e12, 156e12),
    ("l40s", 362e12, 183e12),
    ("l40", 181e12, 90.5e12),
    ("a10", 125e12, 62.5e12),
    ("l4", 121e12, 60e12),
    ("4090", 165e12, 82.6e12),
    ("3090", 71e12, 35.6e12),
    ("v100", 125e12, 15.7e12),
    ("t4", 65e12, 8.1e12),
]


def cuda_peak_flops(device_name: str, precision: str) -> float:
    """The dense peak FLOP/s of a CUDA device by its name (torch.cuda.get_device_name) for
    a precision; 0 when the device is not in the table."""
    name = device_name.lower()
    for fragment, half, single in _CUDA_PEAKS:
        if fragment in name:
            return half if precision in ("bf16", "fp16") else single
    return 0.0


def default_peak_flops(device: str, precision: str) -> float:
    """A best-effort peak for MFU; 0 when unknown (MFU is then left empty)."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return cuda_peak_flops(torch.cuda.get_device_name(torch.device(device)), precision)
    if device == "cpu":
        return CPU_PEAK_FLOPS
    return 0.0


def peak_memory_mb(device: str) -> float:
    """Peak memory: CUDA allocator peak, else the process's max resident set size."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    try:
        import resource
        import sys

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes vs KiB
    except ImportError:  # pragma: no cover - Windows
        return 0.0


def synchronize(device: str) -> Callable[[], None]:
    """A function that waits for queued device work (for honest step timings)."""
    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None
