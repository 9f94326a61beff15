"""`uv run bench`: measure training, generation, attention and tokenizer speed.

Each subcommand lives in a `gpt_eval.bench_<name>` module exposing
`add_arguments(parser)` (which must define `--device`) and `run(args) -> dict`; `run`
prints its own table and returns the JSON-able results, which this command writes with
`--json`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpt_tokenizers.atomic import write_text_atomic

from gpt_cli._common import not_yet_available, user_errors

SUBCOMMANDS = {
    "train": "training tokens/s, MFU and peak memory: ours vs transformers, or GPT-2 124M on a GPU",
    "generate": "generation tokens/s with and without the KV cache, vs transformers",
    "attention": "sdpa vs manual attention time and memory over sequence lengths",
    "tokenizer": "BPE training time, memory and encode MB/s, vs HF tokenizers and tiktoken",
    "speedrun": "wall time to target val losses, ours vs nanoGPT's CPU recipe",
}
# `all` runs the quick ones: a speedrun trains for minutes (--budget-s per run).
ALL = [name for name in SUBCOMMANDS if name != "speedrun"]


def _module(name: str) -> Any:
    return importlib.import_module(f"gpt_eval.bench_{name}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="Benchmark gptkit against its peers.")
    sub = p.add_subparsers(
        dest="what", required=True, metavar="{" + ",".join([*SUBCOMMANDS, "all"]) + "}"
    )
    for name, help_text in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.add_argument("--json", type=Path, help="also write the results to this JSON file")
        with contextlib.suppress(ModuleNotFoundError):
            _module(name).add_arguments(sp)
    sp = sub.add_parser("all", help="run every benchmark but speedrun with its defaults")
    sp.add_argument("--device", default="cpu", help="cpu | cuda | mps")
    sp.add_argument("--json", type=Path, help="also write the results to this JSON file")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    names = ALL if args.what == "all" else [args.what]
    results: dict[str, Any] = {}
    with user_errors():
        for name in names:
            try:
                module = _module(name)
            except ModuleNotFoundError:
                not_yet_available(f"bench {name}")
            if args.what == "all":
                sub_parser = argparse.ArgumentParser()
                module.add_arguments(sub_parser)
                defaults = (
                    ["--device", args.device] if "--device" in sub_parser.format_help() else []
                )
                sub_args = sub_parser.parse_args(defaults)
            else:
                sub_args = args
            print(f"== bench {name} ==", flush=True)
            results[name] = module.run(sub_args)
    if args.json is not None:
        payload = results if args.what == "all" else results[args.what]
        write_text_atomic(args.json, json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
