"""`uv run bench generate`: decoding tokens/s with and without the KV cache, vs transformers.

One run, the same random weights in both models (ours exported with gpt_core.interop.save_gpt2
and loaded by transformers.GPT2LMHeadModel), batch 1, a 16-token prompt, greedy decoding of
256 new tokens (transformers: do_sample=False, use_cache=True, no EOS so every token is
produced). Rounds alternate between the models so machine noise hits both alike; the best
round of each is reported. Shapes:
- small: the shape this project trains on CPU (d_model 256, 4 layers, 8 heads, vocab 4096),
  where a step is mostly per-step overhead;
- gpt2: GPT-2 small (768 wide, 12 layers, 12 heads, vocab 50304), bound at batch 1 by reading
  every fp32 weight once per token, so we also report the memory-bandwidth ceiling.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from gpt_train.precision import pick_device, synchronize

SHAPES: dict[str, dict[str, int]] = {
    "small": {"vocab_size": 4096, "max_seq_len": 512, "d_model": 256, "n_layers": 4, "n_heads": 8},
    "gpt2": {
        "vocab_size": 50304,
        "max_seq_len": 1024,
        "d_model": 768,
        "n_layers": 12,
        "n_heads": 12,
    },
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    parser.add_argument("--shape", choices=["small", "gpt2", "both"], default="both")
    parser.add_argument("--new-tokens", type=int, default=256, help="tokens to generate")
    parser.add_argument("--prompt-tokens", type=int, default=16, help="prompt length")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds")
    parser.add_argument(
        "--no-cache-tokens",
        type=int,
        default=None,
        help="tokens for the (slow, quadratic) no-cache run; default: all for small, 32 for gpt2",
    )
    parser.add_argument(
        "--bandwidth-gbs",
        type=float,
        default=None,
        help="memory read bandwidth for the ceiling (default: measured in this run)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--seed", type=int, default=0)


def _timed(fn: Callable[[], torch.Tensor], device: str) -> tuple[float, torch.Tensor]:
    synchronize(device)()
    t0 = time.perf_counter()
    out = fn()
    synchronize(device)()
    return time.perf_counter() - t0, out


def read_bandwidth(device: str, megabytes: int = 512) -> float:
    """Bytes/s of reading a large fp32 tensor once (a sum): what batch-1 decoding is bound by."""
    x = torch.ones(megabytes * 2**20 // 4, device=device)
    x.sum()
    best = float("inf")
    for _ in range(3):
        dt, _ = _timed(lambda: x.sum(), device)
        best = min(best, dt)
    return x.numel() * 4 / best


def bench_shape(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from gpt_core import GPT, GPTConfig, SamplingConfig, generate
    from gpt_core.interop import save_gpt2
    from transformers import GPT2LMHeadModel

    device = args.device
    torch.manual_seed(args.seed)
    ours = GPT(GPTConfig.from_dict(SHAPES[name])).to(device).eval()
    with tempfile.TemporaryDirectory() as folder:
        save_gpt2(ours, folder)
        peer = GPT2LMHeadModel.from_pretrained(folder).to(device).eval()
    peer.generation_config.eos_token_id = None  # never stop early: all tokens are produced
    peer.generation_config.pad_token_id = 0
    n = args.new_tokens
    prompt = torch.randint(0, SHAPES[name]["vocab_size"], (1, args.prompt_tokens), device=device)
    mask = torch.ones_like(prompt)

    def run_ours(tokens: int, use_cache: bool = True) -> torch.Tensor:
        greedy = SamplingConfig(max_new_tokens=tokens, temperature=0)
        return generate(ours, prompt, greedy, use_cache=use_cache)

    def run_peer(tokens: int) -> torch.Tensor:
        with torch.inference_mode():
            out: torch.Tensor = peer.generate(
                prompt,
                attention_mask=mask,
                max_new_tokens=tokens,
                min_new_tokens=tokens,
                do_sample=False,
                use_cache=True,
            )
        return out

    run_ours(8)  # warm up both (allocator, kernels, lazy init)
    run_peer(8)
    best_ours = best_peer = float("inf")
    same = True
    for _ in range(args.rounds):
        dt, a = _timed(lambda: run_ours(n), device)
        best_ours = min(best_ours, dt)
        dt, b = _timed(lambda: run_peer(n), device)
        best_peer = min(best_peer, dt)
        same = same and a.shape == b.shape and bool(torch.equal(a, b))
    nc_tokens = args.no_cache_tokens or (n if name == "small" else min(n, 32))
    dt_nc, _ = _timed(lambda: run_ours(nc_tokens, use_cache=False), device)

    c = ours.config
    # Weights read per decoded token: everything but the position table (one row is read).
    pos = ours.pos_emb.weight.numel() if ours.pos_emb is not None else 0
    bytes_per_token = (ours.num_parameters() - pos) * ours.tok_emb.weight.element_size()
    return {
        "shape": {k: getattr(c, k) for k in SHAPES[name]},
        "new_tokens": n,
        "ours_cache_tps": n / best_ours,
        "ours_no_cache_tps": nc_tokens / dt_nc,
        "no_cache_tokens": nc_tokens,
        "transformers_tps": n / best_peer,
        "ratio": best_peer / best_ours,
        "same_tokens": same,
        "bytes_per_token": bytes_per_token,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.device = pick_device(args.device, source=f"bench generate --device {args.device}")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # GPT-2 token-id notes
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    if args.threads:
        torch.set_num_threads(args.threads)
    names = ["small", "gpt2"] if args.shape == "both" else [args.shape]
    bandwidth = (args.bandwidth_gbs or 0) * 1e9 or read_bandwidth(args.device)
    results: dict[str, Any] = {
        "device": args.device,
        "threads": torch.get_num_threads(),
        "prompt_tokens": args.prompt_tokens,
        "read_bandwidth_gbs": bandwidth / 1e9,
    }
    for name in names:
        print(f"measuring {name} ...", flush=True)
        r = bench_shape(name, args)
        r["ceiling_tps"] = bandwidth / r["bytes_per_token"]
        r["fraction_of_ceiling"] = r["ours_cache_tps"] / r["ceiling_tps"]
        results[name] = r
    print(
        f"\nbatch 1, {args.prompt_tokens}-token prompt, {args.new_tokens} new tokens, greedy, "
        f"{args.device}, {results['threads']} threads; read bandwidth "
        f"{results['read_bandwidth_gbs']:.1f} GB/s "
        f"({'given' if args.bandwidth_gbs else 'measured'})"
    )
    header = (
        f"{'shape':<7} {'ours+cache':>11} {'ours no cache':>16} {'transformers':>13} "
        f"{'ours/tf':>8} {'same tokens':>12} {'MB/token':>9} {'ceiling':>8} {'of ceiling':>11}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        r = results[name]
        nc = f"{r['ours_no_cache_tps']:.1f} ({r['no_cache_tokens']})"
        print(
            f"{name:<7} {r['ours_cache_tps']:>11.1f} {nc:>16} {r['transformers_tps']:>13.1f} "
            f"{r['ratio']:>7.2f}x {r['same_tokens']!s:>12} {r['bytes_per_token'] / 1e6:>9.1f} "
            f"{r['ceiling_tps']:>8.1f} {r['fraction_of_ceiling']:>10.0%}"
        )
    print(
        "tokens/s; 'no cache' decodes the number of tokens in brackets (recomputing the whole "
        "context each step); ceiling = read bandwidth / fp32 weight bytes per token"
    )
    return results
