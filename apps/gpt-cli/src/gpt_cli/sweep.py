"""`uv run sweep`: run a grid, random or TPE hyper-parameter search over a train config."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from gpt_cli._common import user_errors


def train_command() -> list[str]:
    """How a trial starts `train`: the console script beside this Python, else the module."""
    script = Path(sys.executable).parent / ("train.exe" if sys.platform == "win32" else "train")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from gpt_cli.train import main; main()"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sweep",
        description=(
            "Run a hyper-parameter sweep: every trial is a `train` run in its own folder; "
            "results go to results.csv, results.md and a plot, and the best config is printed. "
            "The optuna study lives in the sweep folder (study.db): rerunning the same command "
            "resumes, skipping finished trials and continuing interrupted ones."
        ),
    )
    p.add_argument("--config", required=True, help="sweep YAML (base config plus search space)")
    p.add_argument("--out", help="sweep folder (default: the file's `out`, else runs/sweep-<name>)")
    p.add_argument("--max-trials", type=int, default=None, help="trial budget (overrides file)")
    p.add_argument(
        "--parallel", type=int, default=None, help="trials run at once (default: file, else 1)"
    )
    p.add_argument("--retry-failed", action="store_true", help="rerun trials that failed last time")
    p.add_argument("--no-progress", action="store_true", help="no progress bar over the trials")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with user_errors():
        from gpt_eval import EvalError
        from gpt_eval.sweep.runner import run_sweep
        from gpt_eval.sweep.spec import load_sweep

        if args.max_trials is not None and args.max_trials < 1:
            raise EvalError(f"--max-trials must be at least 1, got {args.max_trials}")
        spec = load_sweep(args.config)
        out = Path(args.out) if args.out else spec.out or Path("runs") / f"sweep-{spec.path.stem}"
        result = run_sweep(
            spec,
            out,
            spec.command or train_command(),
            max_trials=args.max_trials,
            parallel=args.parallel,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
        )
        table = result.table
        counts = table["status"].value_counts()
        tally = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("pruned", "failed", "interrupted"))
        print(f"\n{len(table)} trial(s), {tally}; sorted by {spec.metric}:")
        shown = ["trial", "status", *spec.swept_keys, spec.metric, "wall_time_s"]
        print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if result.best is None:
            print("no trial finished with a value for the metric; see the errors in results.md")
        else:
            best = result.best
            print(f"\nbest: {best['trial']} ({spec.metric}={best[spec.metric]:.4g})")
            swept = {k: v for k, v in best["overrides"].items() if k in spec.swept_keys}
            print(yaml.safe_dump(swept, sort_keys=False).rstrip())
            print(f"full config: {out / 'best_config.yaml'}  (uv run train --config ...)")
        for path in result.files:
            print(f"wrote {path}")
        if counts.get("interrupted", 0):
            print("interrupted trials continue from their checkpoints when this command reruns")
        if result.best is None:
            raise SystemExit(1)
