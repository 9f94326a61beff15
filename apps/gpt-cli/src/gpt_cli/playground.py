"""`uv run playground`: a local web page to try trained runs (streamed generation, token
view, top-5 candidates, attention maps)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from gpt_cli._common import user_errors


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="playground",
        description=(
            "Serve a web page to try trained runs: pick a run and checkpoint, generate text "
            "as it streams, see its tokens, the 5 likeliest candidates at each step and the "
            "attention maps. Ctrl-C stops the server."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--run", type=Path, help="serve this one run folder")
    src.add_argument(
        "--runs-dir",
        type=Path,
        default=Path("runs"),
        help="offer every run folder directly under this directory (default: runs)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks one)")
    p.add_argument(
        "--max-new-tokens", type=int, default=1000, help="the most tokens one request may ask"
    )
    p.add_argument("--max-prompt-chars", type=int, default=4000, help="the longest prompt accepted")
    p.add_argument(
        "--max-concurrent",
        type=int,
        default=2,
        help="generations at once; more are answered 429 (busy)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_eval import EvalError
        from gpt_eval.playground import require_web_stack

        for name in ("max_new_tokens", "max_prompt_chars", "max_concurrent", "threads"):
            if getattr(args, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise EvalError(f"{flag} must be at least 1, got {getattr(args, name)}")
        if not 0 <= args.port < 65536:
            raise EvalError(f"--port must be in 0..65535, got {args.port}")
        require_web_stack()

        import torch
        from gpt_eval.playground.app import Limits, create_app
        from gpt_eval.playground.catalog import RunCatalog
        from gpt_eval.playground.server import LOCAL_HOSTS, PlaygroundServer

        torch.set_num_threads(args.threads)
        if args.run is not None:
            run = args.run.resolve()
            catalog = RunCatalog(run.parent, only=run.name)
        else:
            catalog = RunCatalog(args.runs_dir)
        limits = Limits(args.max_new_tokens, args.max_prompt_chars, args.max_concurrent)
        if args.host not in LOCAL_HOSTS:
            print(
                f"warning: listening on {args.host} makes the playground reachable from other "
                "machines; it has no login, and anyone who reaches it can use this CPU",
                file=sys.stderr,
            )
        server = PlaygroundServer(create_app(catalog, limits), args.host, args.port)
        names = catalog.names()
        print(
            f"playground: {len(names)} run(s) from {catalog.root} "
            f"({', '.join(names) or 'none yet'})",
            file=sys.stderr,
        )
        print(f"open {server.url}  (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a server stops
            server.run()
        print("playground stopped", file=sys.stderr)


if __name__ == "__main__":
    main()
