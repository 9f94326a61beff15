"""The training loop: data, model, AdamW, mixed precision, eval, samples, checkpoints, DDP.

    result = train(load_config("configs/tiny.yaml"), run_dir="runs/tiny")

Reading order: `StepEngine` does one optimizer step (accumulation, precision, clipping);
`Trainer` sets everything up, resumes, and runs the loop with logging and checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gpt_train import checkpoint as ckpt
from gpt_train import distributed
from gpt_train.config import TrainConfig
from gpt_train.distributed import DistInfo
from gpt_train.errors import TrainError
from gpt_train.loader import BatchSampler, open_tokens
from gpt_train.metrics import MetricsLogger
from gpt_train.optim import build_optimizer
from gpt_train.precision import (
    Precision,
    default_peak_flops,
    make_precision,
    peak_memory_mb,
    synchronize,
)
from gpt_train.prepare import prepare_data, read_meta
from gpt_train.progress import Progress, format_count
from gpt_train.schedule import lr_at

Batch = tuple[torch.Tensor, torch.Tensor]


class StepEngine:
    """One optimizer step over a list of micro-batches.

    Each micro-batch's loss is divided by the number of micro-batches, so the summed
    gradients equal the gradient of the mean loss over the whole batch. Under DDP the
    gradient all-reduce (which averages over ranks) only runs on the last micro-step; the
    others run inside `no_sync()`.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        precision: Precision,
        grad_clip: float,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.precision = precision
        self.grad_clip = grad_clip
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def forward_backward(self, batches: list[Batch]) -> torch.Tensor:
        """Accumulate gradients over `batches`; returns the mean loss (a detached scalar)."""
        n = len(batches)
        total = torch.zeros((), device=batches[0][0].device)
        scaler = self.precision.scaler
        ddp = self.model if isinstance(self.model, DistributedDataParallel) else None
        for i, (x, y) in enumerate(batches):
            last = i == n - 1
            ctx = ddp.no_sync() if ddp is not None and not last else contextlib.nullcontext()
            with ctx:
                with self.precision.autocast():
                    _, loss = self.model(x, y)
                assert loss is not None
                total += loss.detach().float()
                scaler.scale(loss / n).backward()
        return total / n

    def update(self) -> float:
        """Unscale, clip (or just measure) the gradient norm, step, and clear gradients."""
        scaler = self.precision.scaler
        scaler.unscale_(self.optimizer)
        max_norm = self.grad_clip if self.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        scaler.step(self.optimizer)  # skipped by the scaler if fp16 gradients overflowed
        scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)


@dataclass
class TrainResult:
    """How a call to `train` ended."""

    run_dir: Path
    step: int
    status: str  # finished | interrupted | already finished
    train_loss: float | None
    val_loss: float | None
    best_val_loss: float | None
    elapsed_s: float


StepHook = Callable[[int, "Trainer"], None]


def ensure_data(cfg: TrainConfig, info: DistInfo, progress: bool = True) -> Path:
    """The prepared data folder, preparing it (on rank 0) from data.input when missing."""
    d = cfg.data
    data_dir = Path(d.dir)
    if (data_dir / "meta.json").is_file():
        meta = read_meta(data_dir)
        if d.input and (meta.get("inputs") != d.input or meta.get("tokenizer_spec") != d.tokenizer):
            raise TrainError(
                f"data.dir {data_dir} was prepared from {meta.get('inputs')} with tokenizer "
                f"{meta.get('tokenizer_spec')!r}, not from data.input {d.input} with "
                f"{d.tokenizer!r}; delete {data_dir} or set another data.dir"
            )
        return data_dir
    if not d.input:
        raise TrainError(
            f"data.dir {data_dir} holds no prepared data and data.input is empty; run "
            "`uv run prepare --input ... --out DIR` or list sources in data.input"
        )
    if info.is_main:
        print(f"preparing {data_dir} from {', '.join(d.input)} (tokenizer: {d.tokenizer})")
        meta = prepare_data(
            d.input, data_dir, d.tokenizer, d.vocab_size, d.val_fraction, progress=progress
        )
        print(
            f"prepared {meta['train_tokens']:,} train and {meta['val_tokens']:,} val tokens "
            f"(vocab {meta['vocab_size']}) in {meta['seconds']}s"
        )
    distributed.barrier(info)
    return data_dir


class Trainer:
    """Holds one run's state; `run()` trains until train.max_steps or a stop request."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        resume: bool = False,
        info: DistInfo | None = None,
        on_step: StepHook | None = None,
    ) -> None:
        from gpt_core import GPT
        from gpt_tokenizers import load_tokenizer

        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.info = info if info is not None else distributed.setup(cfg.train.device)
        self.on_step = on_step
        self.is_main = self.info.is_main
        self.device = self.info.device
        self.device_type = torch.device(self.device).type
        self.stop_requested = False
        self.ckpt_dir = self.run_dir / "checkpoints"
        t, o = cfg.train, cfg.optim
        self.log_progress = cfg.log.progress and self.is_main

        # -- data and tokenizer
        self.data_dir = ensure_data(cfg, self.info, progress=self.log_progress)
        self.meta = read_meta(self.data_dir)
        self.tokenizer = load_tokenizer(self.data_dir / "tokenizer.json")
        self.gpt_config = cfg.gpt_config(vocab_size=int(self.meta["vocab_size"]))
        if self.gpt_config.vocab_size < int(self.meta["vocab_size"]):
            raise TrainError(
                f"model.vocab_size = {self.gpt_config.vocab_size} is smaller than the "
                f"tokenizer's vocabulary ({self.meta['vocab_size']}); leave it empty"
            )
        T = self.gpt_config.max_seq_len
        rank, world = self.info.rank, self.info.world_size
        self.train_data = BatchSampler(
            open_tokens(self.data_dir, "train"), T, t.batch_size, t.grad_accum, t.seed,
            "train", rank, world, self.device,
        )  # fmt: skip
        self.val_data = BatchSampler(
            open_tokens(self.data_dir, "val"), T, t.batch_size, 1, t.seed, "val", rank, world,
            self.device,
        )  # fmt: skip
        self.tokens_per_step = t.batch_size * t.grad_accum * T

        # -- where we start: a fresh run or the latest checkpoint
        ckpt.clean_partials(self.ckpt_dir) if self.is_main else None
        latest = ckpt.latest_checkpoint(self.ckpt_dir)
        if latest is not None and not resume:
            raise TrainError(
                f"run folder {self.run_dir} already has checkpoints (latest: {latest.name}); "
                "pass --resume to continue it, or --run-dir for a new run"
            )
        self.resume_from = latest if resume else None
        if resume and latest is None and self.is_main:
            print(f"nothing to resume in {self.run_dir}: starting a new run")

        # -- model, optimizer, precision (same seed on every rank: identical initial weights)
        torch.manual_seed(t.seed)
        self.raw_model = GPT(self.gpt_config).to(self.device)
        self.optimizer = build_optimizer(
            self.raw_model, o.lr, o.weight_decay, (o.beta1, o.beta2), o.eps, self.device_type,
            o.fused,
        )  # fmt: skip
        self.precision = make_precision(t.precision, self.device_type)
        self.peak_flops = t.peak_flops or default_peak_flops(self.device, self.precision.name)
        self.step = 0
        self.best_val: float | None = None
        self.elapsed_before = 0.0
        self.last_train_loss: float | None = None
        self.last_val_loss: float | None = None
        # Different dropout masks per rank, reproducible per rank.
        torch.manual_seed(t.seed + 1 + rank)
        if self.resume_from is not None:
            self._load(self.resume_from)

        model: nn.Module = self.raw_model
        if t.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        if self.info.enabled:
            ids = [self.info.local_rank] if self.device_type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        self.model = model
        self.engine = StepEngine(model, self.optimizer, self.precision, o.grad_clip)

    # -- checkpoints ----------------------------------------------------------------------

    def _rng_states(self) -> dict[str, Any]:
        cpu = torch.get_rng_state()
        cuda = torch.cuda.get_rng_state() if self.device_type == "cuda" else None
        if self.info.enabled:  # every rank's generator, so dropout resumes exactly
            gathered: list[Any] = [None] * self.info.world_size
            dist.all_gather_object(gathered, (cpu, cuda))
            return {"cpu": [g[0] for g in gathered], "cuda": [g[1] for g in gathered]}
        return {"cpu": [cpu], "cuda": [cuda]}

    def save(self, name: str | None = None) -> Path | None:
        """Write a full checkpoint at the current step (rank 0; all ranks must call)."""
        rng = self._rng_states()
        if not self.is_main:
            return None
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.precision.scaler.state_dict(),
            "sampler": self.train_data.state_dict(),
            "rng": rng,
            "step": self.step,
            "best_val_loss": self.best_val,
            "elapsed_s": self.elapsed(),
            "world_size": self.info.world_size,
        }
        path = ckpt.save_checkpoint(
            self.ckpt_dir, name or ckpt.step_name(self.step), self.raw_model, self._meta(), state
        )
        ckpt.prune(self.ckpt_dir, self.cfg.log.keep_last)
        return path

    def _meta(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "tokens": self.step * self.tokens_per_step,
            "train_loss": self.last_train_loss,
            "val_loss": self.last_val_loss,
            "best_val_loss": self.best_val,
            "model_config": self.gpt_config.to_dict(),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def _load(self, path: Path) -> None:
        meta = ckpt.read_meta(path)
        if meta.get("model_config") != self.gpt_config.to_dict():
            raise TrainError(
                f"{path} was trained with a different model section; resume with the run's "
                f"own config ({self.run_dir / 'config.yaml'})"
            )
        ckpt.load_weights(self.raw_model, path, self.device)
        state = ckpt.load_state(path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.precision.scaler.load_state_dict(state["scaler"])
        self.train_data.load_state_dict(state["sampler"])
        self.step = int(state["step"])
        self.best_val = state["best_val_loss"]
        self.elapsed_before = float(state["elapsed_s"])
        self.last_train_loss = meta.get("train_loss")
        self.last_val_loss = meta.get("val_loss")
        rng = state["rng"]
        r = self.info.rank
        if len(rng["cpu"]) == self.info.world_size:
            torch.set_rng_state(rng["cpu"][r])
            if self.device_type == "cuda" and rng["cuda"][r] is not None:
                torch.cuda.set_rng_state(rng["cuda"][r])
        else:  # a different number of processes: reseed deterministically instead
            torch.manual_seed(self.cfg.train.seed + 1 + r + self.step)
        if self.is_main:
            print(f"resumed from {path} (step {self.step})")

    # -- evaluation and samples ----------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean validation loss over log.eval_batches fixed batches (all ranks together)."""
        self.raw_model.eval()
        total = torch.zeros(2, device=self.device)  # loss sum, batch count
        for x, y in self.val_data.eval_batches(self.cfg.log.eval_batches):
            with self.precision.autocast():
                _, loss = self.raw_model(x, y)
            assert loss is not None
            total[0] += loss.float()
            total[1] += 1
        if self.info.enabled:
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        self.raw_model.train()
        return float(total[0] / total[1])

    @torch.no_grad()
    def sample(self, max_new_tokens: int | None = None) -> str:
        """A short continuation of log.sample_prompt (leaves the training RNG untouched)."""
        from gpt_core.generation import SamplingConfig, generate

        n = self.cfg.log.sample_tokens if max_new_tokens is None else max_new_tokens
        prompt = self.cfg.log.sample_prompt
        try:
            ids = self.tokenizer.encode(prompt) if prompt else []
        except Exception:  # a prompt character outside a char vocabulary
            ids = []
        if not ids:
            eot = self.tokenizer.eot_id
            ids = [eot if eot is not None else 0]
        self.raw_model.eval()
        idx = torch.tensor([ids], dtype=torch.long, device=self.device)
        with self.precision.autocast():
            sampling = SamplingConfig(
                max_new_tokens=n, temperature=0.8, seed=self.cfg.train.seed + self.step
            )
            out = generate(self.raw_model, idx, sampling)
        self.raw_model.train()
        text: str = self.tokenizer.decode(out[0, len(ids) :].tolist())
        return text

    def _print_sample(self) -> None:
        """Print a sample; a failure here is reported but never ends a training run."""
        try:
            text = self.sample()
        except Exception as exc:  # the checkpoint is already saved: keep training
            print(f"\n(sample at step {self.step} failed: {type(exc).__name__}: {exc})")
            return
        print(f"\n--- sample at step {self.step} ---\n{text}\n---", flush=True)

    # -- the loop -------------------------------------------------------------------------

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.t_start)

    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint and return (what Ctrl-C does)."""
        self.stop_requested = True

    @contextlib.contextmanager
    def _sigint_saves(self) -> Iterator[None]:
        """First Ctrl-C: stop after this step and save. A second one interrupts at once."""

        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stop_requested:
                raise KeyboardInterrupt
            self.stop_requested = True
            if self.is_main:
                print("\nCtrl-C: saving a checkpoint after this step (again to abort)")

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _write_run_files(self) -> MetricsLogger | None:
        if not self.is_main:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.save(self.run_dir / "config.yaml")
        shutil.copyfile(self.data_dir / "tokenizer.json", self.run_dir / "tokenizer.json")
        resume_step = self.step if self.resume_from is not None else None
        return MetricsLogger(self.run_dir / "metrics.csv", resume_from=resume_step)

    def _describe(self) -> None:
        t = self.cfg.train
        n = self.raw_model.num_parameters()
        print(
            f"model: {n / 1e6:.2f}M parameters | device {self.device} x{self.info.world_size} "
            f"| precision {self.precision.name} | global batch {t.batch_size * t.grad_accum} x "
            f"{self.gpt_config.max_seq_len} = {self.tokens_per_step:,} tokens/step | data "
            f"{format_count(float(self.meta['train_tokens']))} train tokens"
        )
        print(f"run folder: {self.run_dir}")

    def run(self) -> TrainResult:
        """Train to train.max_steps (or until a stop request); returns how it ended."""
        cfg, log = self.cfg, self.cfg.log
        max_steps = cfg.train.max_steps
        total_steps = cfg.optim.decay_steps or max_steps
        self.t_start = time.perf_counter()
        logger = self._write_run_files()
        if self.is_main:
            self._describe()
        if self.step >= max_steps:
            if logger:
                logger.close()
            return self._result("already finished")
        sync = synchronize(self.device)
        bar = Progress(max_steps, desc="train", enabled=self.log_progress, start=self.step)
        status = "finished"
        last_saved = -1
        window_tokens, window_time = 0, 0.0
        try:
            with self._sigint_saves():
                while self.step < max_steps:
                    lr = lr_at(
                        self.step, cfg.optim.lr, cfg.optim.min_lr, cfg.optim.warmup_steps,
                        total_steps, cfg.optim.schedule, cfg.optim.decay_fraction,
                    )  # fmt: skip
                    for group in self.optimizer.param_groups:
                        group["lr"] = lr
                    t0 = time.perf_counter()
                    batches = self.train_data.next()
                    loss_t = distributed.mean_across(
                        self.engine.forward_backward(batches), self.info
                    )
                    loss = float(loss_t)
                    if not math.isfinite(loss):
                        self._diverged(loss)
                    grad_norm = self.engine.update()
                    sync()
                    dt = time.perf_counter() - t0
                    self.step += 1
                    self.last_train_loss = loss
                    window_tokens += self.tokens_per_step
                    window_time += dt

                    val = None
                    if self.step % log.eval_interval == 0 or self.step == max_steps:
                        val = self.evaluate()
                        self.last_val_loss = val
                        if self.best_val is None or val < self.best_val:
                            self.best_val = val
                            if self.is_main:
                                ckpt.save_checkpoint(
                                    self.ckpt_dir, ckpt.BEST, self.raw_model, self._meta()
                                )
                    if (
                        val is not None
                        or self.step % log.log_interval == 0
                        or self.step == max_steps
                    ):
                        tok_s = window_tokens / max(window_time, 1e-9)
                        per_device = tok_s / self.info.world_size
                        mfu = (
                            self.raw_model.estimate_mfu(per_device, self.peak_flops)
                            if self.peak_flops
                            else None
                        )
                        if logger:
                            logger.log(
                                {
                                    "step": self.step,
                                    "tokens": self.step * self.tokens_per_step,
                                    "train_loss": loss,
                                    "val_loss": val,
                                    "lr": lr,
                                    "grad_norm": grad_norm,
                                    "tokens_per_sec": tok_s,
                                    "mfu": mfu,
                                    "peak_mem_mb": peak_memory_mb(self.device),
                                    "elapsed_s": self.elapsed(),
                                }
                            )
                        window_tokens, window_time = 0, 0.0
                        extra = f"loss {loss:.4f}" + (f" val {val:.4f}" if val is not None else "")
                        bar.update(
                            self.step,
                            f"{extra} | {format_count(tok_s)} tok/s",
                            force=val is not None,
                        )
                        if val is not None and self.is_main and not self.log_progress:
                            print(f"step {self.step}: train loss {loss:.4f}, val loss {val:.4f}")
                    else:
                        bar.update(self.step, f"loss {loss:.4f}")
                    if self.step % log.checkpoint_interval == 0 or self.step == max_steps:
                        self.save()
                        last_saved = self.step
                    sample_now = log.sample_interval and self.step % log.sample_interval == 0
                    if sample_now and self.is_main:
                        self._print_sample()
                    if self.on_step is not None:
                        self.on_step(self.step, self)
                    if distributed.any_across(self.stop_requested, self.info):
                        status = "interrupted"
                        break
            if status == "interrupted" and last_saved != self.step:
                self.save()
        finally:
            bar.close()
            if logger:
                logger.close()
        return self._result(status)

    def _diverged(self, loss: float) -> None:
        latest = ckpt.latest_checkpoint(self.ckpt_dir)
        kept = f"the last good checkpoint is {latest}" if latest else "no checkpoint was saved yet"
        raise TrainError(
            f"non-finite training loss ({loss}) at step {self.step + 1}: stopping; {kept}. "
            "Try a lower optim.lr, a longer optim.warmup_steps or train.precision=fp32"
        )

    def _result(self, status: str) -> TrainResult:
        return TrainResult(
            self.run_dir, self.step, status, self.last_train_loss, self.last_val_loss,
            self.best_val, self.elapsed_before + (time.perf_counter() - self.t_start),
        )  # fmt: skip


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    on_step: StepHook | None = None,
) -> TrainResult:
    """Set up (joining torchrun's process group if launched by it), train, tear down."""
    info = distributed.setup(cfg.train.device)
    try:
        result = Trainer(cfg, run_dir, resume=resume, info=info, on_step=on_step).run()
    finally:
        distributed.teardown()
    sys.stdout.flush()
    return result
