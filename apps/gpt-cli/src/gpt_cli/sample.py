"""`uv run sample`: generate text from a trained run, streamed to the terminal as it comes."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpt_cli._common import add_run_arguments, user_errors

if TYPE_CHECKING:
    from gpt_core import SamplingConfig
    from gpt_train.runs import LoadedRun


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sample",
        description=(
            "Generate text from a trained run. Tokens are printed as they are produced; the "
            "same --seed gives the same text."
        ),
    )
    add_run_arguments(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--prompt", default="", help="text to continue (default: start of text)")
    src.add_argument("--prompt-file", type=Path, help="a file of prompts, one per line")
    src.add_argument(
        "--interactive",
        action="store_true",
        help="a prompt loop: type prompts, watch each reply stream, change the settings with "
        "/temp 0.7, /topk 40, /topp 0.9, /seed 1, /max 200, /verbose on (/help lists them); "
        "Ctrl-C stops a reply, Ctrl-D or Ctrl-C at the prompt leaves",
    )
    p.add_argument("--num-samples", type=int, default=1, help="samples per prompt")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=1.0, help="0 picks the likeliest token")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens")
    p.add_argument(
        "--top-p", type=float, default=None, help="sample among the smallest set of mass p"
    )
    p.add_argument("--seed", type=int, default=None, help="sample i of a prompt uses seed + i")
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="stop a sample when this text appears (repeatable); the end-of-text token "
        "always stops",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show at each step the 5 likeliest next tokens, their probabilities and the pick",
    )
    p.add_argument(
        "--attention",
        type=Path,
        metavar="OUT.png",
        help="save the attention maps (layers x heads) of the (first) prompt to this image",
    )
    return p


def read_prompts(args: argparse.Namespace) -> list[str]:
    """--prompt, or the non-empty lines of --prompt-file (escaped \\n become newlines)."""
    from gpt_eval import EvalError

    if args.prompt_file is None:
        return [args.prompt]
    if not args.prompt_file.is_file():
        raise EvalError(f"prompt file not found: {args.prompt_file}")
    lines = args.prompt_file.read_text(encoding="utf-8").splitlines()
    prompts = [ln.replace("\\n", "\n") for ln in lines if ln.strip()]
    if not prompts:
        raise EvalError(f"prompt file {args.prompt_file} has no prompts (one per line)")
    return prompts


def check_args(args: argparse.Namespace) -> None:
    from gpt_eval import EvalError

    if args.num_samples < 1:
        raise EvalError(f"--num-samples must be at least 1, got {args.num_samples}")
    if args.max_new_tokens < 0:
        raise EvalError(f"--max-new-tokens must be >= 0, got {args.max_new_tokens}")
    if args.interactive and (args.num_samples != 1 or args.attention is not None):
        raise EvalError("--interactive takes no --num-samples or --attention")


def write_now(text: str) -> None:
    """Print a piece of output at once (the sample streams as it is made)."""
    sys.stdout.write(text)
    sys.stdout.flush()


def interact(run: LoadedRun, sampling: SamplingConfig, args: argparse.Namespace) -> None:
    """The --interactive prompt loop, with line editing and history where readline exists."""
    from gpt_eval.interactive import Settings, prompt_loop

    with contextlib.suppress(ImportError):  # not on every platform; input() works without
        import readline  # noqa: F401 - importing it gives input() line editing

    prompt_loop(run, Settings(sampling, args.verbose), stops=args.stop, write=write_now)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_core import SamplingConfig
        from gpt_eval.attention_plot import save_prompt_attention
        from gpt_eval.sampling import prompt_ids, sample_text
        from gpt_train.runs import load_run
        from gpt_train.threads import set_threads

        check_args(args)
        prompts = read_prompts(args)
        sampling = SamplingConfig(
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
        )
        set_threads(args.threads)
        run = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
        print(f"# {run.checkpoint_path} (step {run.step})", file=sys.stderr)
        if args.interactive:
            interact(run, dataclasses.replace(sampling, seed=args.seed), args)
            return
        encoded = [prompt_ids(run.tokenizer, p) for p in prompts]
        if args.attention is not None:
            path = save_prompt_attention(run, encoded[0], args.attention)
            print(f"wrote attention maps to {path}", file=sys.stderr)
        for p, (prompt, ids) in enumerate(zip(prompts, encoded, strict=True)):
            for i in range(args.num_samples):
                if len(prompts) > 1 or args.num_samples > 1:
                    print(f"--- prompt {p + 1}, sample {i + 1} ---", flush=True)
                if args.verbose:
                    print(f"prompt: {prompt!r}")
                else:
                    sys.stdout.write(prompt)
                seed = None if args.seed is None else args.seed + i
                sample = dataclasses.replace(sampling, seed=seed)
                sample_text(run, ids, sample, write_now, stops=args.stop, verbose=args.verbose)
