"""`uv run train`: train a GPT from a YAML config (also under torchrun for DDP).

Exit codes: 0 finished (or already finished), EXIT_INTERRUPTED (75) stopped early with a
checkpoint saved (Ctrl-C, or pruned by a sweep; `--resume` continues), 2 a bad config,
argument or run folder, 130 aborted by a second, separate Ctrl-C. `uv run sweep` reads them
from each trial. Which run folders `train` accepts is gpt_train.runfolder's business.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shlex
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gpt_eval.sweep.protocol import EXIT_INTERRUPTED, TRIAL_ENV

from gpt_cli._common import user_errors

if TYPE_CHECKING:
    from gpt_train.state import TrainResult


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train",
        description="Train a GPT model from a YAML config.",
        epilog=(
            "multi-GPU: torchrun --standalone --nproc_per_node=8 -m gpt_cli.train --config F. "
            "--resume continues a run as it was configured: the run folder's config.yaml is "
            "the base and only the --set values and flags given now change it (a --config "
            "that differs is not applied; the model section cannot change). "
            "One train process per run folder: a second one is refused. "
            f"Exit status: 0 finished; {EXIT_INTERRUPTED} interrupted with a checkpoint saved "
            "(Ctrl-C, or pruned by a sweep; continue with --resume); 2 a bad config, "
            "argument or run folder; 130 aborted by a second Ctrl-C pressed more than a "
            "second after the first (without saving that step)."
        ),
    )
    p.add_argument(
        "--config",
        help="YAML config file (see configs/); optional with --resume --run-dir, where the "
        "run's own config.yaml is used",
    )
    p.add_argument("--run-dir", help="run folder (default: runs/<config name>)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value; repeatable",
    )
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--resume", action="store_true", help="continue the run from its latest checkpoint"
    )
    start.add_argument(
        "--overwrite",
        action="store_true",
        help="start again in a run folder that holds a run: the old run is moved to "
        "RUN_DIR.old-<date-time> first (never deleted)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default=None)
    p.add_argument("--max-steps", type=int, help="same as --set train.max_steps=N")
    p.add_argument("--batch-size", type=int, help="same as --set train.batch_size=N")
    p.add_argument("--lr", type=float, help="same as --set optim.lr=X")
    p.add_argument("--seed", type=int, help="same as --set train.seed=N")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="train.precision")
    p.add_argument("--compile", action="store_true", help="same as --set train.compile=true")
    look = p.add_mutually_exclusive_group()
    look.add_argument(
        "--explain",
        type=int,
        metavar="N",
        help="print a look inside the first N steps: shapes through every layer, Q/K/V, the "
        "causal mask, the loss, gradients and updates (same as --set log.explain_steps=N; "
        "log.explain_interval=M repeats it every M steps)",
    )
    look.add_argument("--verbose", action="store_true", help="same as --explain 1")
    p.add_argument(
        "--init-from",
        metavar="SOURCE",
        help="initial weights (model.init_from): scratch, a GPT-2 folder, a hub name "
        "(gpt2, gpt2-medium, gpt2-large, gpt2-xl), a run folder or a checkpoint folder",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads, same as --set train.threads=N (default: torch's, one per "
        "core; on a busy machine 1 or 2 are faster)",
    )
    return p


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    pairs = [
        ("train.device", args.device),
        ("train.max_steps", args.max_steps),
        ("train.batch_size", args.batch_size),
        ("optim.lr", args.lr),
        ("train.seed", args.seed),
        ("train.precision", args.precision),
        ("train.compile", "true" if args.compile else None),
        ("log.explain_steps", 1 if args.verbose else args.explain),
        ("model.init_from", args.init_from),
        ("train.threads", args.threads),
    ]
    return [f"{key}={value}" for key, value in pairs if value is not None]


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config is None and not (args.resume and args.run_dir):
        parser.error("--config is required (unless --resume with --run-dir)")
    with user_errors():
        from gpt_train.config import load_config
        from gpt_train.runfolder import CLI, resume_config
        from gpt_train.trainer import train

        overrides = [*args.set, *_flag_overrides(args)]
        run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / Path(args.config).stem
        if args.resume:
            cfg, note = resume_config(run_dir, args.config, overrides)
            if note and int(os.environ.get("RANK", "0")) == 0:
                print(note)
        else:
            cfg = load_config(args.config, overrides=overrides)
        on_step = None
        if os.environ.get(TRIAL_ENV):  # a sweep's trial: report val losses, maybe get pruned
            from gpt_eval.sweep.pruning import trial_hook

            on_step = trial_hook(cfg.log.eval_interval, cfg.train.max_steps)
        result = train(
            cfg,
            run_dir,
            resume=args.resume,
            on_step=on_step,
            overwrite=args.overwrite,
            spelling=CLI,
        )
        if int(os.environ.get("RANK", "0")) == 0:
            _report(result, run_dir)
        if result.status == "interrupted":  # on every rank: all exit alike
            # The run is saved. Python drops its SIGINT handlers while it shuts down (which
            # takes a while with torch loaded), so a late copy of the same Ctrl-C (uv run
            # forwards it again ~0.2s later) would kill the exiting process and turn 75
            # into 130: once the interpreter is exiting, SIGINT is ignored.
            atexit.register(signal.signal, signal.SIGINT, signal.SIG_IGN)
            raise SystemExit(EXIT_INTERRUPTED)


def _report(result: TrainResult, run_dir: Path) -> None:
    """The closing lines: how the run ended and where it is."""
    losses = f"train loss {result.train_loss:.4f}" if result.train_loss is not None else ""
    if result.val_loss is not None:
        losses += f", val loss {result.val_loss:.4f}"
    if result.status == "interrupted":
        print(  # config.yaml holds every setting: the folder alone names the run
            f"interrupted at step {result.step} ({losses}); checkpoint saved. Continue "
            f"with: uv run train --run-dir {shlex.quote(str(run_dir))} --resume"
        )
    elif result.status == "already finished":
        print(f"{run_dir} already reached step {result.step}; raise train.max_steps to go on")
    else:
        print(f"finished {result.step} steps in {result.elapsed_s:.0f}s ({losses})")
    print(f"run folder: {run_dir}  (sample: uv run sample --run {run_dir})")


if __name__ == "__main__":
    main()
