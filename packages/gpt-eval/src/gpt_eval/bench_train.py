"""`uv run bench train`: training tokens/s, MFU and peak memory of our loop.

Two shapes:
- `small` (default; d_model 256, 4 layers, 8 heads, context 256, batch 16, vocab 4096): ours
  against transformers' GPT-2 on the same random token windows, in one process, alternating
  rounds so that machine noise hits both alike. The peer is transformers.GPT2LMHeadModel with
  a plain torch.optim.AdamW loop.
- `gpt2`: GPT-2 small, 124M parameters (12 layers, 768 wide, 12 heads, context 1024, the
  50257-token vocabulary padded to 50304), ours alone: the GPU figure,
      uv run bench train --device cuda --shape gpt2 --precision bf16 --compile

Ours is gpt_train's own step (StepEngine: fused AdamW with parameter groups, gradient
clipping, the precision wrapper) on gpt_core.GPT, optionally under torch.compile. Timed
steps read nothing back from the device (as the trainer's ordinary steps); each round ends
with one synchronisation. MFU is against the device's dense peak for the precision (the
table in gpt_train.precision, or --peak-tflops); on CPU, against an fp32 matmul peak timed in
the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

SHAPES: dict[str, dict[str, int]] = {
    "small": {"vocab": 4096, "seq": 256, "d_model": 256, "layers": 4, "heads": 8, "batch": 16},
    "gpt2": {"vocab": 50257, "seq": 1024, "d_model": 768, "layers": 12, "heads": 12, "batch": 16},
}
STEPS = {"small": (1, 3), "gpt2": (3, 20)}  # default (warmup, timed steps per round)
TARGET = 1.3  # the ours / transformers ratio on the small shape this benchmark holds ours to

Batch = list[tuple[torch.Tensor, torch.Tensor]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    parser.add_argument(
        "--shape",
        choices=list(SHAPES),
        default="small",
        help="small: ours vs transformers (default); gpt2: the 124M GPT-2 shape, ours alone",
    )
    parser.add_argument(
        "--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="default fp32"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile our model")
    parser.add_argument("--batch", type=int, default=None, help="sequences per step")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="the device's peak TFLOP/s for MFU (default: known GPUs' dense peak for the "
        "precision; on CPU a matmul timed in the run)",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round")
    parser.add_argument(
        "--rounds", type=int, default=4, help="alternating timed rounds (default 4)"
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--seed", type=int, default=0)


def matmul_peak(device: str, n: int = 2048, iters: int = 8) -> float:
    """FLOP/s of a large fp32 matmul: the practical peak MFU is measured against on CPU."""
    from gpt_train.precision import synchronize

    sync = synchronize(device)
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    sync()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(iters):
            a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 * iters / best


def gpt_config(shape: dict[str, int]) -> Any:
    """Our model's config for a shape (GPT-2's vocabulary padded to a multiple of 64)."""
    from gpt_core import GPTConfig

    return GPTConfig(
        vocab_size=shape["vocab"],
        max_seq_len=shape["seq"],
        d_model=shape["d_model"],
        n_layers=shape["layers"],
        n_heads=shape["heads"],
        pad_vocab_multiple=64 if shape["vocab"] > 50000 else 1,
    )


def _our_step(args: argparse.Namespace, shape: dict[str, int]) -> tuple[Any, Callable[..., None]]:
    """Our model and one training step of it, as the trainer runs it."""
    from gpt_core import GPT
    from gpt_train.config import OptimSection
    from gpt_train.optim import StepEngine, build_optimizer
    from gpt_train.precision import make_precision

    device, dev_type = args.device, torch.device(args.device).type
    model = GPT(gpt_config(shape)).to(device)
    optim = OptimSection(lr=3e-4, weight_decay=0.1, beta1=0.9, beta2=0.95)
    opt = build_optimizer(model, optim, dev_type)
    net: torch.nn.Module = model
    if args.compile:
        net = torch.compile(model)  # type: ignore[assignment]
    engine = StepEngine(net, opt, make_precision(args.precision, dev_type), grad_clip=1.0)

    def step(batch: Batch) -> None:
        engine.forward_backward(batch)
        engine.update()

    return model, step


def _peer_step(args: argparse.Namespace, shape: dict[str, int]) -> Callable[..., None]:
    """transformers' GPT2LMHeadModel of the same shape, with a plain AdamW loop."""
    from gpt_train.precision import make_precision
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # config notes about GPT-2's own token ids do not apply
    hf_cfg = GPT2Config(
        vocab_size=shape["vocab"],
        n_positions=shape["seq"],
        n_embd=shape["d_model"],
        n_layer=shape["layers"],
        n_head=shape["heads"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
    )
    hf = GPT2LMHeadModel(hf_cfg).to(args.device)
    hf.train()
    hf_opt = torch.optim.AdamW(hf.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    precision = make_precision(args.precision, torch.device(args.device).type)

    def step(batch: Batch) -> None:
        x, _ = batch[0]
        with precision.autocast():
            out = hf(input_ids=x, labels=x)  # shifts labels inside
        out.loss.backward()
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)

    return step


def peak_flops(args: argparse.Namespace) -> tuple[float, str]:
    """The peak MFU is measured against, and where it comes from."""
    from gpt_train.precision import default_peak_flops

    if args.peak_tflops is not None:
        return args.peak_tflops * 1e12, "--peak-tflops"
    if torch.device(args.device).type == "cuda":
        name = torch.cuda.get_device_name(torch.device(args.device))
        return default_peak_flops(args.device, args.precision), f"{name} dense {args.precision}"
    return matmul_peak(args.device), "fp32 matmul measured in this run"


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gpt_train.loader import BatchSampler
    from gpt_train.precision import peak_memory_mb, pick_device, synchronize

    args.device = pick_device(args.device, source=f"bench train --device {args.device}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device, name = args.device, args.shape
    s = dict(SHAPES[name], batch=args.batch or SHAPES[name]["batch"])
    warmup, steps = STEPS[name]
    warmup = warmup if args.warmup is None else args.warmup
    steps = steps if args.steps is None else args.steps
    cuda = torch.device(device).type == "cuda"
    sync = synchronize(device)
    torch.manual_seed(args.seed)
    tokens = np.random.default_rng(args.seed).integers(0, s["vocab"], 2_000_000, dtype=np.int64)
    sampler = BatchSampler(
        tokens.astype(np.uint16), seq_len=s["seq"], batch_size=s["batch"], seed=args.seed,
        device=device,
    )  # fmt: skip
    ours, our_step = _our_step(args, s)
    loops = {"ours": our_step}
    if name == "small":
        loops["transformers"] = _peer_step(args, s)
    batches = [sampler.next() for _ in range(warmup + steps)]
    for batch in batches[:warmup]:  # compilation, allocator and kernel choice happen here
        for step in loops.values():
            step(batch)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(torch.device(device))
    rounds: dict[str, list[float]] = {loop: [] for loop in loops}
    for r in range(args.rounds):
        # Every other round runs the loops in the opposite order, so a drift in the
        # machine's speed within a round does not favour whichever loop runs first.
        for loop in list(loops)[:: 1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            for batch in batches[warmup:]:
                loops[loop](batch)
            sync()
            rounds[loop].append(time.perf_counter() - t0)
    times = {loop: sum(secs) for loop, secs in rounds.items()}
    peak, peak_source = peak_flops(args)
    if not cuda and args.peak_tflops is None:
        peak = max(peak, matmul_peak(device))
    memory = peak_memory_mb(device)

    n_tokens = args.rounds * steps * s["batch"] * s["seq"]
    flops_per_token = ours.flops_per_token(s["seq"])
    result: dict[str, Any] = {
        "shape_name": name,
        "shape": s,
        "device": device,
        "precision": args.precision,
        "compile": bool(args.compile),
        "threads": torch.get_num_threads(),
        "peak_tflops": peak / 1e12,
        "peak_source": peak_source,
        "peak_memory_mb": memory,
        "flops_per_token": flops_per_token,
        "params_ours": ours.num_parameters(),
    }
    where = f"{device} ({torch.get_num_threads()} threads)" if not cuda else device
    print(
        f"shape {name}: {ours.num_parameters() / 1e6:.1f}M parameters, d_model {s['d_model']}, "
        f"{s['layers']} layers, {s['heads']} heads, seq {s['seq']}, batch {s['batch']}, vocab "
        f"{s['vocab']}, {args.precision}{', compiled' if args.compile else ''}, {where}"
    )
    peak_text = f"{peak / 1e12:.1f} TFLOP/s" if peak >= 1e12 else f"{peak / 1e9:.1f} GFLOP/s"
    if not peak:
        peak_text, peak_source = "unknown", "not in gpt_train.precision's table: --peak-tflops"
    print(f"peak for MFU: {peak_text} ({peak_source})")
    print(f"{'loop':<14}{'tokens/s':>10}{'ms/step':>10}{'MFU':>8}")
    for loop, secs in times.items():
        tok_s = n_tokens / secs
        mfu = flops_per_token * tok_s / peak if peak else None
        ms = 1000 * secs / (args.rounds * steps)
        result[loop] = {"tokens_per_sec": tok_s, "ms_per_step": ms, "mfu": mfu}
        mfu_text = f"{mfu * 100:>7.1f}%" if mfu is not None else f"{'-':>8}"
        print(f"{loop:<14}{tok_s:>10.0f}{ms:>10.1f}{mfu_text}")
    kind = "torch.cuda.max_memory_allocated" if cuda else "process max RSS"
    print(f"peak memory: {memory:,.0f} MiB ({kind})")
    if "transformers" in result:
        ratio = result["ours"]["tokens_per_sec"] / result["transformers"]["tokens_per_sec"]
        paired = zip(rounds["ours"], rounds["transformers"], strict=True)
        per_round = sorted(peer / ours_s for ours_s, peer in paired)
        result["speedup"] = ratio
        result["speedup_per_round"] = per_round
        print(f"ours / transformers: {ratio:.2f}x (target >= {TARGET}x on a quiet machine)")
        if len(per_round) > 1:
            print(
                f"per round: median {float(np.median(per_round)):.2f}x, "
                f"{per_round[0]:.2f}x to {per_round[-1]:.2f}x over {len(per_round)} rounds"
            )
    return result
