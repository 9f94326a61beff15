"""`uv run bench train`: training tokens/s and MFU of our loop vs transformers' GPT-2.

Both train the same shape (d_model 256, 4 layers, 8 heads, context 256, batch 16, vocab 4096,
fp32) on the same random token windows, in one process, alternating rounds so that machine
noise hits both alike. Ours is gpt_train's own step (StepEngine: fused AdamW with parameter
groups, gradient clipping, the precision wrapper) on gpt_core.GPT; the peer is
transformers.GPT2LMHeadModel with a plain torch.optim.AdamW loop. MFU is measured against
the fp32 matmul peak timed in the same run.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import torch

SHAPE = {"vocab": 4096, "seq": 256, "d_model": 256, "layers": 4, "heads": 8, "batch": 16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round and model")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--seed", type=int, default=0)


def matmul_peak(device: str, n: int = 2048, iters: int = 8) -> float:
    """FLOP/s of a large fp32 matmul: the practical peak MFU is measured against."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

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


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gpt_core import GPT, GPTConfig
    from gpt_train.config import OptimSection
    from gpt_train.loader import BatchSampler
    from gpt_train.optim import StepEngine, build_optimizer
    from gpt_train.precision import make_precision
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # config notes about GPT-2's own token ids do not apply
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    s = SHAPE
    torch.manual_seed(args.seed)
    tokens = np.random.default_rng(args.seed).integers(0, s["vocab"], 2_000_000, dtype=np.int64)
    tokens = tokens.astype(np.uint16)
    sampler = BatchSampler(
        tokens, seq_len=s["seq"], batch_size=s["batch"], seed=args.seed, device=device
    )

    # ours: the trainer's own step engine and optimizer setup
    ours = GPT(
        GPTConfig(
            vocab_size=s["vocab"],
            max_seq_len=s["seq"],
            d_model=s["d_model"],
            n_layers=s["layers"],
            n_heads=s["heads"],
        )
    ).to(device)
    dev_type = torch.device(device).type
    opt = build_optimizer(
        ours, OptimSection(lr=3e-4, weight_decay=0.1, beta1=0.9, beta2=0.95), dev_type
    )
    engine = StepEngine(ours, opt, make_precision("fp32", dev_type), grad_clip=1.0)

    def our_step(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        loss = engine.forward_backward(batch)
        engine.update()
        return float(loss)

    # transformers: GPT2LMHeadModel and a plain AdamW loop
    hf_cfg = GPT2Config(
        vocab_size=s["vocab"],
        n_positions=s["seq"],
        n_embd=s["d_model"],
        n_layer=s["layers"],
        n_head=s["heads"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,
    )
    hf = GPT2LMHeadModel(hf_cfg).to(device)
    hf.train()
    hf_opt = torch.optim.AdamW(hf.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)

    def hf_step(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        x, _ = batch[0]
        out = hf(input_ids=x, labels=x)  # shifts labels inside
        out.loss.backward()
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)
        return float(out.loss.detach())

    batches = [sampler.next() for _ in range(args.warmup + args.steps)]
    for i in range(args.warmup):
        our_step(batches[i])
        hf_step(batches[i])
    peak = matmul_peak(device)
    times = {"ours": 0.0, "transformers": 0.0}
    for _ in range(args.rounds):
        for name, step in (("ours", our_step), ("transformers", hf_step)):
            t0 = time.perf_counter()
            for b in batches[args.warmup :]:
                step(b)
            times[name] += time.perf_counter() - t0
    peak = max(peak, matmul_peak(device))

    n_tokens = args.rounds * args.steps * s["batch"] * s["seq"]
    flops_per_token = ours.flops_per_token(s["seq"])
    result: dict[str, Any] = {
        "shape": dict(s),
        "device": device,
        "threads": torch.get_num_threads(),
        "matmul_peak_gflops": peak / 1e9,
        "flops_per_token": flops_per_token,
        "params_ours": ours.num_parameters(),
        "params_transformers": sum(p.numel() for p in hf.parameters()),
    }
    print(
        f"shape: d_model {s['d_model']}, {s['layers']} layers, {s['heads']} heads, seq "
        f"{s['seq']}, batch {s['batch']}, vocab {s['vocab']}, fp32, {device} "
        f"({torch.get_num_threads()} threads)"
    )
    print(f"measured fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s")
    print(f"{'loop':<14}{'tokens/s':>10}{'ms/step':>10}{'MFU':>8}")
    for name, secs in times.items():
        tok_s = n_tokens / secs
        mfu = flops_per_token * tok_s / peak
        ms = 1000 * secs / (args.rounds * args.steps)
        result[name] = {"tokens_per_sec": tok_s, "ms_per_step": ms, "mfu": mfu}
        print(f"{name:<14}{tok_s:>10.0f}{ms:>10.1f}{mfu * 100:>7.1f}%")
    ratio = result["ours"]["tokens_per_sec"] / result["transformers"]["tokens_per_sec"]
    result["speedup"] = ratio
    print(f"ours / transformers: {ratio:.2f}x (target >= 1.2x)")
    return result
