"""The training loop: one optimizer step, evaluation, logging, checkpoints, samples, DDP.

    result = train(load_config("configs/tiny.yaml"), run_dir="runs/tiny")

Reading order: `Trainer` builds the model, optimizer and samplers for a prepared `Dataset`
and resumes through its `Checkpointer`; `Trainer.run` is the loop, one named step per line
(one optimizer step itself is `optim.StepEngine`); `train` prepares the data and runs it.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import torch
import torch.distributed as dist
from gpt_core import GPT, SamplingConfig, generate
from gpt_tokenizers import load_tokenizer
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from gpt_train import distributed
from gpt_train.checkpoint import Checkpointer, CheckpointError, NonFiniteWeightsError
from gpt_train.config import TrainConfig
from gpt_train.dashboards import RunLogger, check_available, open_run_logger
from gpt_train.data import Dataset, ensure_data
from gpt_train.distributed import DistInfo
from gpt_train.errors import TrainError
from gpt_train.explain import explain_due, explain_step
from gpt_train.interrupt import StopOnCtrlC
from gpt_train.loader import BatchSampler
from gpt_train.optim import StepEngine, build_optimizer
from gpt_train.precision import default_peak_flops, make_precision, peak_memory_mb
from gpt_train.pretrained import apply_init
from gpt_train.runfolder import PYTHON, Spelling, check_can_start, check_same_model, claim
from gpt_train.schedule import lr_at
from gpt_train.state import TrainResult, TrainState
from gpt_train.threads import set_threads
from gpt_train.window import StepWindow, due

StepHook = Callable[[int, "Trainer"], None]  # state.train_loss: as of the last sync step


class Trainer:
    """One run on a prepared dataset; `run()` trains until train.max_steps or a stop request."""

    def __init__(
        self,
        cfg: TrainConfig,
        dataset: Dataset,
        run_dir: str | Path,
        *,
        resume: bool = False,
        info: DistInfo | None = None,
        on_step: StepHook | None = None,
        init: GPT | None = None,
    ) -> None:
        t = cfg.train
        set_threads(t.threads)
        check_available(cfg.log.backends)  # a missing dashboard package: before any output
        self.cfg, self.data, self.run_dir, self.on_step = cfg, dataset, Path(run_dir), on_step
        self.info = info if info is not None else distributed.setup(t.device)
        self.main, self.device = self.info.is_main, self.info.device
        self.device_type = torch.device(self.device).type
        self.stop_requested = False
        self.tokenizer = load_tokenizer(dataset.tokenizer_path)
        self.model_config = dataset.model_config(cfg.model.gpt_config())
        self.train_data = self._sampler("train", t.grad_accum)
        self.val_data = self._sampler("val", 1)
        self.tokens_per_step = t.batch_size * t.grad_accum * self.model_config.max_seq_len

        torch.manual_seed(t.seed)  # the same on every rank: identical initial weights
        self.raw_model = GPT(self.model_config).to(self.device)
        if init is not None:  # model.init_from's weights (a resumed run loads its own after)
            self.raw_model.load_state_dict(init.state_dict())
        self.optimizer = build_optimizer(self.raw_model, cfg.optim, self.device_type)
        self.precision = make_precision(t.precision, self.device_type)
        self.peak_flops = t.peak_flops or default_peak_flops(self.device, self.precision.name)
        self.checkpointer = Checkpointer(
            self.run_dir / "checkpoints",
            model=self.raw_model,
            optimizer=self.optimizer,
            scaler=self.precision.scaler,
            sampler=self.train_data,
            model_config=self.model_config,
            info=self.info,
            keep_last=cfg.log.keep_last,
            seed=t.seed,
        )
        torch.manual_seed(t.seed + 1 + self.info.rank)  # dropout: different masks per rank
        self.resumed = False
        self.state = self._start(resume)
        model: nn.Module = self.raw_model
        if t.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        if self.info.enabled:
            ids = [self.info.local_rank] if self.device_type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        self.model = model
        self.engine = StepEngine(model, self.optimizer, self.precision, cfg.optim.grad_clip)
        self._clock = (time.perf_counter(), self.state.elapsed_s)  # run() restarts it
        self.window = StepWindow(self.device, self.info)  # read on the host at sync steps only

    def _sampler(self, split: str, grad_accum: int) -> BatchSampler:
        t = self.cfg.train
        return BatchSampler(
            self.data.tokens(split),
            seq_len=self.model_config.max_seq_len,
            batch_size=t.batch_size,
            grad_accum=grad_accum,
            seed=t.seed,
            split=split,
            rank=self.info.rank,
            world_size=self.info.world_size,
            device=self.device,
        )

    def _start(self, resume: bool) -> TrainState:
        """A fresh state, or the latest checkpoint's when resuming (see gpt_train.runfolder)."""
        check_can_start(self.run_dir, resume)  # never over an earlier run's output
        latest = self.checkpointer.latest()
        if latest is None:
            if resume and self.main:
                print(f"nothing to resume in {self.run_dir}: starting a new run")
            return TrainState()
        check_same_model(self.run_dir, self.cfg)
        state = self.checkpointer.load(latest)
        self.resumed = True
        if self.main:
            print(f"resumed from {latest} (step {state.step})")
        return state

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train to train.max_steps (or until a stop request); returns how it ended."""
        log, max_steps, state = self.cfg.log, self.cfg.train.max_steps, self.state
        self._clock = (time.perf_counter(), state.elapsed_s)
        self.logger = self._open_run_folder()
        show = log.progress and self.main and state.step < max_steps
        self.bar = tqdm(
            total=max_steps, initial=state.step, desc="train", unit="step", disable=not show
        )
        if state.step >= max_steps:
            self._close()
            return self._result("already finished")
        status, last_saved = "finished", -1
        try:
            with self._sigint_saves():
                while state.step < max_steps:
                    lr = self._train_step()
                    do = due(state.step, log, max_steps)
                    grad_norm = self._flush() if do.sync else 0.0  # ordinary steps read nothing
                    val = self._evaluate_and_keep_best() if do.evaluate else None
                    if do.log:
                        self._log(lr, grad_norm, val)
                    self.bar.update(1)
                    if do.save:
                        last_saved = self._checkpoint()
                    if do.sample:
                        self._sample()
                    if self.on_step is not None:
                        self.on_step(state.step, self)
                    ask = do.sync or not self.info.enabled  # all-reduced under DDP: sync steps
                    if ask and distributed.any_across(self.stop_requested, self.info):
                        status = "interrupted"
                        break
                if status == "interrupted" and last_saved != state.step:
                    self._checkpoint()  # still under the handler: a repeated Ctrl-C waits
        finally:
            self._close()
        return self._result(status)

    def _train_step(self) -> float:
        """One optimizer step at the scheduled learning rate, queued on the device without
        reading anything back (see gpt_train.window); returns the lr."""
        lr = lr_at(self.state.step, self.cfg.optim, self.cfg.train.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.window.begin()
        with self._explaining():
            loss = self.engine.forward_backward(self.train_data.next())
            grad_norm = self.engine.update()
        self.state.step += 1
        self.state.tokens_seen += self.tokens_per_step
        self.window.record(self.state.step, loss, grad_norm, self.tokens_per_step)
        return lr

    def _flush(self) -> float:
        """Read the device-side figures (a sync step): stop on a non-finite loss, naming its
        step, before anything is evaluated or saved; returns the gradient norm."""
        f = self.window.flush()
        if f.bad_step is not None:
            self._diverged(f"non-finite training loss ({f.bad_loss}) at step {f.bad_step}")
        self.state.train_loss = f.loss
        return f.grad_norm

    def _explaining(self) -> contextlib.AbstractContextManager[None]:
        """A look inside the coming step when log.explain_* ask for it (rank 0 only)."""
        log, step = self.cfg.log, self.state.step + 1
        if not (self.main and explain_due(step, log.explain_steps, log.explain_interval)):
            return contextlib.nullcontext()
        forward = not self.cfg.train.compile  # a compiled graph would keep the hooks
        return explain_step(self.raw_model, self.optimizer, step, tqdm.write, forward)

    def _evaluate_and_keep_best(self) -> float:
        """The val loss now; the weights go to best/ when it is the lowest so far."""
        val = self.evaluate()
        if not math.isfinite(val):  # NaN compares false: it must never become the best
            self._diverged(f"non-finite validation loss ({val}) at step {self.state.step}")
        self.state.val_loss = val
        if self.state.best_val_loss is None or val < self.state.best_val_loss:
            self.state.best_val_loss = val
            self.checkpointer.save_best(self.state)  # refuses non-finite weights
        return val

    def _log(self, lr: float, grad_norm: float, val: float | None) -> None:
        """A metrics row (csv and dashboards) and the progress bar's figures (throughput since
        the last row)."""
        s = self.state
        tok_s = self.window.take_throughput()
        per_device = tok_s / self.info.world_size
        mfu = self.raw_model.estimate_mfu(per_device, self.peak_flops) if self.peak_flops else None
        if self.logger is not None:
            self.logger.log(
                {
                    "step": s.step,
                    "tokens": s.tokens_seen,
                    "train_loss": s.train_loss,
                    "val_loss": val,
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "tokens_per_sec": tok_s,
                    "mfu": mfu,
                    "peak_mem_mb": peak_memory_mb(self.device),
                    "elapsed_s": self.elapsed(),
                }
            )
        losses = f"loss {s.train_loss:.4f}" + (f" val {val:.4f}" if val is not None else "")
        self.bar.set_postfix_str(f"{losses} | {tqdm.format_sizeof(tok_s)} tok/s", refresh=False)
        if val is not None and self.main and self.bar.disable:
            print(f"step {s.step}: train loss {s.train_loss:.4f}, val loss {val:.4f}")

    def _checkpoint(self) -> int:
        """Save a full checkpoint of the current step (all ranks); returns the step."""
        if self.window.pending:  # a stop between sync steps
            self._flush()
        self.state.elapsed_s = self.elapsed()
        try:
            self.checkpointer.save(self.state)
        except NonFiniteWeightsError:  # a finite loss, then an update that broke the weights
            self._diverged(f"non-finite weights after step {self.state.step}")
        return self.state.step

    def _sample(self) -> None:
        """Print a sample (rank 0); a failure is reported but never ends a training run."""
        if not self.main:
            return
        try:
            text = self.sample()
        except Exception as exc:  # the checkpoint is already saved: keep training
            tqdm.write(f"(sample at step {self.state.step} failed: {type(exc).__name__}: {exc})")
            return
        tqdm.write(f"--- sample at step {self.state.step} ---\n{text}\n---")

    def _diverged(self, what: str) -> NoReturn:
        """Stop on NaN/inf, naming the newest checkpoint (never non-finite: those are refused)."""
        latest = None
        with contextlib.suppress(CheckpointError):  # every checkpoint broken: none to name
            latest = self.checkpointer.latest()
        kept = f"the last good checkpoint is {latest}" if latest else "no good checkpoint was saved"
        raise TrainError(
            f"{what}: stopping; {kept}. "
            "Try a lower optim.lr, a longer optim.warmup_steps or train.precision=fp32"
        ) from None

    # -- evaluation and samples ----------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> float:
        """Mean validation loss over log.eval_batches fixed batches (all ranks together)."""
        self.raw_model.eval()
        total = torch.zeros(2, device=self.device)  # loss sum, batch count
        for x, y in self.val_data.eval_batches(self.cfg.log.eval_batches):
            with self.precision.autocast():
                _, loss = self.raw_model(x, y, return_logits=False)
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
        sampling = SamplingConfig(
            max_new_tokens=n, temperature=0.8, seed=self.cfg.train.seed + self.state.step
        )
        with self.precision.autocast():
            out = generate(self.raw_model, idx, sampling)
        self.raw_model.train()
        text: str = self.tokenizer.decode(out[0, len(ids) :].tolist())
        return text

    # -- the run folder, time, signals ----------------------------------------------------

    def elapsed(self) -> float:
        """Wall time of the whole run: earlier sessions plus this one."""
        start, before = self._clock
        return before + (time.perf_counter() - start)

    def request_stop(self) -> None:
        """Finish the current step, save a checkpoint and return (what Ctrl-C does)."""
        self.stop_requested = True

    def _sigint_saves(self) -> StopOnCtrlC:
        """Ctrl-C stops after this step and saves; one press may arrive as several signals."""
        return StopOnCtrlC(self.request_stop, announce=self.main)

    def _open_run_folder(self) -> RunLogger | None:
        """Write config.yaml and tokenizer.json, open metrics.csv and the dashboards of
        log.backends, describe the run (rank 0: the only one that logs)."""
        if not self.main:
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.save(self.run_dir / "config.yaml")
        shutil.copyfile(self.data.tokenizer_path, self.run_dir / "tokenizer.json")
        t = self.cfg.train
        print(
            f"model: {self.raw_model.num_parameters() / 1e6:.2f}M parameters | device "
            f"{self.device} x{self.info.world_size} | precision {self.precision.name} | global "
            f"batch {t.batch_size * t.grad_accum} x {self.model_config.max_seq_len} = "
            f"{self.tokens_per_step:,} tokens/step | data "
            f"{tqdm.format_sizeof(self.data.train_tokens)} train tokens"
        )
        print(f"run folder: {self.run_dir}")
        resume_step = self.state.step if self.resumed else None
        return open_run_logger(self.run_dir, self.cfg, resume_from=resume_step)

    def _close(self) -> None:
        self.bar.close()
        if self.logger is not None:
            self.logger.close()

    def _result(self, status: str) -> TrainResult:
        return self.state.result(self.run_dir, status, self.elapsed())


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    on_step: StepHook | None = None,
    overwrite: bool = False,
    spelling: Spelling = PYTHON,
) -> TrainResult:
    """Set up (joining torchrun's process group if launched by it), prepare, train, tear down.
    The run folder is held for the whole call (`runfolder.claim`): a second process is refused,
    and earlier output needs `resume=True` (continue) or `overwrite=True` (moved aside first);
    `spelling` is how a refusal names those (the CLI passes its flags)."""
    info = distributed.setup(cfg.train.device)
    try:
        cfg, pre = apply_init(cfg)  # before the run folder is touched: errors leave none
        if pre is not None and info.is_main:
            print(f"initial weights: {pre.source} ({pre.model.num_parameters():,} parameters)")
        with claim(run_dir, resume=resume, overwrite=overwrite, info=info, spelling=spelling):
            dataset = ensure_data(cfg.data, info, progress=cfg.log.progress and info.is_main)
            init = pre.model if pre is not None else None
            trainer = Trainer(
                cfg, dataset, run_dir, resume=resume, info=info, on_step=on_step, init=init
            )
            result = trainer.run()
    finally:
        distributed.teardown()
    sys.stdout.flush()
    return result
