"""`uv run bench attention`: sdpa vs manual causal attention, time and memory by length.

Both paths are gpt_core's own (gpt_core.attention.sdpa_attention and manual_attention), run
on the same random q, k, v of shape (batch, heads, T, head_dim), forward plus backward.
Time is the best of a few repeats. Memory:
- on CUDA, measured: peak torch.cuda.max_memory_allocated during forward+backward, above
  what q, k, v and their gradients already hold;
- on CPU, not measured (PyTorch has no peak-allocation counter there): we report the size
  of ONE (B, H, T, T) float32 tensor. The manual path creates several (scores, scaled and
  masked scores, softmax weights, and their gradients in backward; at least two alive at
  once) and keeps the weights for backward; sdpa's fused kernel works in blocks instead.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch
from gpt_train.precision import pick_device, synchronize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    parser.add_argument(
        "--seq-lens", default="128,256,512,1024,2048", help="comma-separated sequence lengths"
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    parser.add_argument("--forward-only", action="store_true", help="time the forward only")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")


def measure(
    impl: str, shape: tuple[int, int, int, int], device: str, repeats: int, backward: bool
) -> tuple[float, float | None]:
    """(best seconds, peak extra bytes on CUDA or None) for one implementation and
    q/k/v shape (B, H, T, head_dim)."""
    from gpt_core.attention import manual_attention, sdpa_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(shape, device=device, requires_grad=backward) for _ in range(3))

    def once() -> None:
        if impl == "sdpa":
            out = sdpa_attention(q, k, v)
        else:
            out, _ = manual_attention(q, k, v)
        if backward:
            torch.autograd.backward(out.sum())

    once()  # warm-up (and allocate the gradients, so they count in the baseline)
    cuda = device.startswith("cuda")
    peak: float | None = None
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        once()
        torch.cuda.synchronize()
        peak = float(torch.cuda.max_memory_allocated() - base)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)()
        t0 = time.perf_counter()
        once()
        synchronize(device)()
        best = min(best, time.perf_counter() - t0)
    return best, peak


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.device = pick_device(args.device, source=f"bench attention --device {args.device}")
    if args.threads:
        torch.set_num_threads(args.threads)
    lens = [int(x) for x in str(args.seq_lens).split(",") if x.strip()]
    B, H, hd, device = args.batch, args.heads, args.head_dim, args.device
    backward = not args.forward_only
    cuda = device.startswith("cuda")
    rows = []
    for T in lens:
        print(f"T={T} ...", flush=True)
        t_sdpa, m_sdpa = measure("sdpa", (B, H, T, hd), device, args.repeats, backward)
        t_man, m_man = measure("manual", (B, H, T, hd), device, args.repeats, backward)
        rows.append(
            {
                "seq_len": T,
                "sdpa_ms": t_sdpa * 1e3,
                "manual_ms": t_man * 1e3,
                "speedup": t_man / t_sdpa,
                "sdpa_peak_mb": None if m_sdpa is None else m_sdpa / 2**20,
                "manual_peak_mb": None if m_man is None else m_man / 2**20,
                "tt_tensor_mb": B * H * T * T * 4 / 2**20,
            }
        )
    what = "forward+backward" if backward else "forward"
    print(
        f"\n{what}, B={B}, heads={H}, head_dim={hd}, float32, {device}, "
        f"{torch.get_num_threads()} threads"
    )
    mem_cols = (
        f"{'sdpa peak MB':>13} {'manual peak MB':>15}" if cuda else f"{'one (B,H,T,T) MB':>17}"
    )
    header = f"{'T':>6} {'sdpa ms':>9} {'manual ms':>10} {'manual/sdpa':>12} {mem_cols}"
    print(header)
    print("-" * len(header))
    for r in rows:
        if cuda:
            mem = f"{r['sdpa_peak_mb']:>13.1f} {r['manual_peak_mb']:>15.1f}"
        else:
            mem = f"{r['tt_tensor_mb']:>17.1f}"
        print(
            f"{r['seq_len']:>6} {r['sdpa_ms']:>9.2f} {r['manual_ms']:>10.2f} "
            f"{r['speedup']:>11.2f}x {mem}"
        )
    if cuda:
        print("peak MB: measured (max_memory_allocated above the inputs and their gradients)")
    else:
        print(
            "memory on CPU is not measured; the last column is the size of one (B,H,T,T) float32 "
            "tensor, several of which the manual path materialises (sdpa's kernel does not)"
        )
    return {
        "device": device,
        "batch": B,
        "heads": H,
        "head_dim": hd,
        "backward": backward,
        "memory_measured": cuda,
        "rows": rows,
    }
