"""`uv run microgpt`: train the pure-Python GPT on a list of names and print new ones."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from gpt_cli._common import user_errors


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microgpt",
        description="Train the pure-Python GPT (gpt_micro: scalar autograd, no torch) on a "
        "list of names, one per line, and print names it invents.",
    )
    parser.add_argument(
        "--names",
        default=None,
        metavar="FILE",
        help="names file, one per line (default: the list shipped with gpt_micro; "
        "try ../shared/data/names.txt)",
    )
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default 1000)")
    parser.add_argument("--batch-size", type=int, default=1, help="names per step (default 1)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate (default 0.01)")
    parser.add_argument("--num-samples", type=int, default=20, help="names to print (default 20)")
    parser.add_argument(
        "--temperature", type=float, default=0.8, help="sampling temperature (default 0.8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for init, data and sampling")
    parser.add_argument("--n-embd", type=int, default=16, help="model width (default 16)")
    parser.add_argument("--n-layer", type=int, default=1, help="transformer blocks (default 1)")
    parser.add_argument("--n-head", type=int, default=4, help="attention heads (default 4)")
    parser.add_argument(
        "--block-size", type=int, default=16, help="longest name in tokens + 1 (default 16)"
    )
    parser.add_argument(
        "--log-every", type=int, default=100, help="print the loss every N steps (default 100)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_micro.train import CharVocab, build_model, load_names, sample, train

        names = load_names(args.names)
        vocab = CharVocab.from_names(names)
        model = build_model(
            vocab,
            seed=args.seed,
            n_embd=args.n_embd,
            n_layer=args.n_layer,
            n_head=args.n_head,
            block_size=args.block_size,
        )
        print(
            f"{len(names)} names, vocab {vocab.size} ({len(vocab.chars)} characters + BOS), "
            f"{model.num_parameters():,} parameters"
        )
        start = time.perf_counter()
        recent: list[float] = []

        def progress(step: int, loss: float) -> None:
            recent.append(loss)
            if (step + 1) % max(args.log_every, 1) == 0 or step + 1 == args.steps:
                mean = sum(recent) / len(recent)
                recent.clear()
                elapsed = time.perf_counter() - start
                print(f"step {step + 1:5d}/{args.steps} | loss {mean:.4f} | {elapsed:.1f}s")

        train(
            model,
            vocab,
            names,
            steps=args.steps,
            lr=args.lr,
            batch_size=args.batch_size,
            seed=args.seed,
            on_step=progress,
        )
        print(f"--- {args.num_samples} new names (temperature {args.temperature}) ---")
        known = set(names)
        for name in sample(model, vocab, args.num_samples, args.temperature, args.seed):
            if not name:
                print("(empty: the model ended the name at once)")
            else:
                print(name if name not in known else f"{name}  (in the training list)")
