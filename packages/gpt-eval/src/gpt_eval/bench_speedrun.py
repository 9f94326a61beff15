"""`uv run bench speedrun`: wall time until the validation loss reaches targets, ours vs nanoGPT.

A config (default configs/shakespeare_char.yaml) trains through our own loop
(`gpt_train.train`) until every target val loss is reached or the wall-clock budget ends;
the clock starts before data preparation. A step hook scores the model on the first
--eval-tokens tokens of the val split (non-overlapping windows, gpt_eval.evaluate) about every
--eval-every-s seconds; that measurement is the benchmark's own cost, so its time is left out
of the clock (the config's own log.eval_interval evaluations stay in). The peer is nanoGPT's
published CPU recipe for shakespeare_char (`PEER`) on the same data through the same loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gpt_tokenizers.atomic import write_text_atomic
from tqdm import tqdm

from gpt_eval.errors import EvalError
from gpt_eval.evaluate import total_loss

DEFAULT_CONFIG = "configs/shakespeare_char.yaml"
DEFAULT_TARGETS = "1.80,1.70,1.60"

# nanoGPT's README, "I only have a macbook": train_shakespeare_char.py with --device=cpu
# --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000
# --lr_decay_iters=2000 --dropout=0.0 --eval_iters=20. From that config: lr 1e-3 cosine to
# 1e-4, warmup 100, beta2 0.99, weight decay 0.1, clip 1.0, eval every 250 steps; nanoGPT's
# default model has no biases and learned positions, LayerNorm, GELU and a tied head.
PEER: dict[str, dict[str, Any]] = {
    "model": {
        "max_seq_len": 64,
        "d_model": 128,
        "n_layers": 4,
        "n_heads": 4,
        "dropout": 0.0,
        "bias": False,
    },
    "optim": {
        "lr": 1e-3,
        "min_lr": 1e-4,
        "warmup_steps": 100,
        "schedule": "cosine",
        "decay_steps": 2000,
        "beta2": 0.99,
        "weight_decay": 0.1,
        "grad_clip": 1.0,
    },
    "train": {"max_steps": 2000, "batch_size": 12, "grad_accum": 1},
    "log": {"eval_interval": 250, "eval_batches": 20, "checkpoint_interval": 250},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a key of --config (repeatable), e.g. optim.lr=3e-3",
    )
    parser.add_argument("--budget-s", type=float, default=900.0, help="wall seconds per run")
    parser.add_argument(
        "--targets", default=DEFAULT_TARGETS, help=f"val losses to time (default {DEFAULT_TARGETS})"
    )
    parser.add_argument(
        "--eval-tokens", type=int, default=100_000, help="val tokens per estimate (default 100k)"
    )
    parser.add_argument(
        "--eval-every-s", type=float, default=15.0, help="seconds of training between estimates"
    )
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run nanoGPT's CPU recipe on the same data (default: yes)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/speedrun"), help="run folders")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | mps (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")


def parse_targets(text: str) -> tuple[float, ...]:
    """'1.80,1.70' -> (1.8, 1.7), highest first; a one-line EvalError for anything else."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise EvalError(
            f"--targets {text!r}: expected positive val losses separated by commas, "
            f"e.g. {DEFAULT_TARGETS}"
        )
    return tuple(sorted(set(values), reverse=True))


class Race:
    """The step hook of one timed run: scores the model on a wall-clock schedule, records when
    each target is first reached, and stops the run at the budget or when all are reached."""

    def __init__(self, name: str, args: argparse.Namespace, targets: tuple[float, ...]) -> None:
        self.name, self.targets = name, targets
        self.budget_s, self.every_s, self.eval_tokens = args.budget_s, args.eval_every_s, 0
        self.max_tokens = args.eval_tokens
        self.start = time.perf_counter()
        self.paused = 0.0  # seconds spent in this hook's evaluations: off the clock
        self.evals: list[dict[str, Any]] = []
        self.reached: dict[float, dict[str, Any]] = {}
        self.trainer: Any = None

    def elapsed(self) -> float:
        """Wall seconds since the start (data preparation included), evaluations excluded."""
        return time.perf_counter() - self.start - self.paused

    def __call__(self, step: int, trainer: Any) -> None:
        self.trainer = trainer
        now = self.elapsed()
        last = self.evals[-1]["elapsed_s"] if self.evals else 0.0
        over = now >= self.budget_s or step >= trainer.cfg.train.max_steps
        if now - last >= self.every_s or over:
            self.evaluate(step, now)
        if over or len(self.reached) == len(self.targets):
            trainer.request_stop()

    def evaluate(self, step: int, now: float) -> float:
        """Score the first eval_tokens val tokens; record a row and any target reached."""
        t0 = time.perf_counter()
        trainer = self.trainer
        ids = trainer.data.tokens("val")[: self.max_tokens + 1]
        with trainer.precision.autocast():
            nats, scored, _ = total_loss(trainer.raw_model, ids, batch_size=64)
        self.paused += time.perf_counter() - t0
        self.eval_tokens = scored
        loss = nats / scored
        tokens = trainer.state.tokens_seen
        row = {"elapsed_s": now, "step": step, "tokens": tokens, "val_loss": loss}
        self.evals.append(row)
        for target in self.targets:
            if loss <= target and target not in self.reached:
                self.reached[target] = row
        tqdm.write(
            f"[{self.name}] {now:7.1f}s step {step:>5} val {loss:.4f} "
            f"({scored:,} tokens, {time.perf_counter() - t0:.1f}s to score)"
        )
        return loss

    def summary(self, run_dir: Path) -> dict[str, Any]:
        """The run's figures: time to each target (None: not reached), final loss, tokens."""
        end = self.evals[-1] if self.evals else None
        train_s = end["elapsed_s"] if end else self.elapsed()
        tokens = end["tokens"] if end else 0
        return {
            "run_dir": str(run_dir),
            "time_to_target_s": {
                f"{t:.2f}": (self.reached[t]["elapsed_s"] if t in self.reached else None)
                for t in self.targets
            },
            "final_val_loss": end["val_loss"] if end else None,
            "steps": end["step"] if end else 0,
            "tokens_seen": tokens,
            "train_s": train_s,
            "tokens_per_sec": tokens / train_s if train_s > 0 else 0.0,
            "eval_s": self.paused,
            "eval_tokens": self.eval_tokens,
            "evals": self.evals,
        }


def ratios(ours: dict[str, Any], peer: dict[str, Any], budget_s: float) -> dict[str, Any]:
    """Per target, peer time / our time. When only we reach a target, the peer's budget gives
    a lower bound ({"ratio": budget/ours, "lower_bound": True}); otherwise the ratio is None."""
    out: dict[str, Any] = {}
    for key, mine in ours["time_to_target_s"].items():
        theirs = peer["time_to_target_s"].get(key)
        if mine is None:
            out[key] = {"ratio": None, "lower_bound": False}
        elif theirs is None:
            out[key] = {"ratio": max(budget_s, peer["train_s"]) / mine, "lower_bound": True}
        else:
            out[key] = {"ratio": theirs / mine, "lower_bound": False}
    return out


def _configs(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The TrainConfigs of ours and (with --peer) the peer, each preparing its own data copy."""
    from gpt_train.config import load_config

    base = load_config(args.config, args.set)
    data = dataclasses.asdict(base.data)
    train: dict[str, Any] = {"device": args.device}
    if args.threads is not None:
        train["threads"] = args.threads
    configs: dict[str, Any] = {}
    for name in ("ours", "peer") if args.peer else ("ours",):
        own = dict(data)
        if base.data.input:  # a fresh copy: data preparation is on the clock
            own["dir"] = str(folder / name / "data")
        if name == "ours":
            configs[name] = load_config(args.config, args.set, values={"data": own, "train": train})
        else:
            values = {k: dict(v) for k, v in PEER.items()}
            values["train"].update(train, seed=base.train.seed)
            values["data"] = own
            configs[name] = load_config(None, values=values)
    return configs


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch._dynamo  # noqa: F401  (what building an optimizer imports: off the first clock)
    from gpt_train.trainer import train

    targets = parse_targets(args.targets)
    if args.eval_tokens < 1 or args.budget_s <= 0:
        raise EvalError("--eval-tokens and --budget-s must be positive")
    configs = _configs(args, args.out / "unused")  # every config error before any training
    folder = _new_folder(args.out)
    configs = _configs(args, folder)
    load = os.getloadavg()
    runs: dict[str, Any] = {}
    for name, cfg in configs.items():
        print(f"== {name}: {args.config if name == 'ours' else 'nanoGPT CPU recipe'} ==")
        race = Race(name, args, targets)
        run_dir = folder / name / "run"
        train(cfg, run_dir, on_step=race)
        runs[name] = race.summary(run_dir)
    result: dict[str, Any] = {
        "config": args.config,
        "overrides": list(args.set),
        "budget_s": args.budget_s,
        "targets": list(targets),
        "load_average_before": list(load),
        "load_average_after": list(os.getloadavg()),
        "out": str(folder),
        **runs,
    }
    if "peer" in runs:
        result["ratios"] = ratios(runs["ours"], runs["peer"], args.budget_s)
    _print(result)
    write_text_atomic(folder / "speedrun.json", _json(result))
    print(f"run folders: {', '.join(r['run_dir'] for r in runs.values())}")
    print(f"wrote {folder / 'speedrun.json'}")
    return result


def _new_folder(out: Path) -> Path:
    """out/<UTC time>, made here (with a -2, -3... suffix when two runs start together)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        folder = out / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise EvalError(f"{out}: could not make a new run folder for {stamp}")


def _json(result: dict[str, Any]) -> str:
    import json

    return json.dumps(result, indent=2) + "\n"


def _print(result: dict[str, Any]) -> None:
    names = [n for n in ("ours", "peer") if n in result]
    load = result["load_average_before"]
    print(f"budget {result['budget_s']:g}s per run; load average before {load[0]:.2f}")
    header = f"{'target':<8}" + "".join(f"{n + ' (s)':>12}" for n in names)
    print(header + (f"{'peer/ours':>14}" if "ratios" in result else ""))
    for key in result["ours"]["time_to_target_s"]:
        cells = [result[n]["time_to_target_s"][key] for n in names]
        line = f"{key:<8}" + "".join(
            f"{c:>12.1f}" if c is not None else f"{'-':>12}" for c in cells
        )
        if "ratios" in result:
            r = result["ratios"][key]
            text = (
                "-" if r["ratio"] is None else f"{'>' if r['lower_bound'] else ''}{r['ratio']:.2f}x"
            )
            line += f"{text:>14}"
        print(line)
    for n in names:
        r = result[n]
        final = r["final_val_loss"]
        print(
            f"{n}: final val {final:.4f} after {r['steps']} steps, {r['tokens_seen']:,} tokens in "
            f"{r['train_s']:.1f}s ({r['tokens_per_sec']:,.0f} tokens/s; {r['eval_s']:.1f}s of "
            f"scoring on {r['eval_tokens']:,} val tokens left out)"
            if final is not None
            else f"{n}: no evaluation"
        )
