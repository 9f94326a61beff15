"""The sweep engine: parsing, samplers, up-front checks, trials, resume, pruning and results.

Trials run a fake `train` (a small Python script) that writes a metrics.csv whose loss
depends on the learning rate (best at 1e-3), fails for lr >= 0.5, and follows the trial
protocol (exit codes, --resume, pruning through the study), so the engine is tested fast.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from gpt_eval import EvalError
from gpt_eval.sweep.report import markdown_table
from gpt_eval.sweep.runner import run_sweep
from gpt_eval.sweep.spec import format_value, load_sweep

FAKE_TRAIN = r"""
import argparse, math, os, pathlib, signal, sys, time
p = argparse.ArgumentParser()
p.add_argument("--config"); p.add_argument("--run-dir"); p.add_argument("--set", action="append")
p.add_argument("--resume", action="store_true")
a = p.parse_args()
sets = dict(s.split("=", 1) for s in a.set or [])
run = pathlib.Path(a.run_dir)
sweep = run.parent.parent
with open(sweep / "calls.log", "a") as f:
    f.write(run.parent.name + (":resume" if a.resume else "") + "\n")
lr = float(sets["optim.lr"])
if lr >= 0.5:
    print("step 1 ...")
    print("error: optim.lr = 0.5 diverged", file=sys.stderr)
    sys.exit(2)
run.mkdir(parents=True, exist_ok=True)
loss = 1 + abs(math.log10(lr) + 3)   # best at lr = 1e-3
rows = ["step,tokens,train_loss,val_loss,lr,grad_norm,tokens_per_sec,mfu,peak_mem_mb,elapsed_s"]

def write(steps):
    out = list(rows)
    for step in steps:
        val = loss + 1 / step
        out.append(f"{step},{step * 64},{val + 0.1},{val if step != 2 else ''},{lr},1,100,0,0,0.1")
    (run / "metrics.csv").write_text("\n".join(out) + "\n")

def stop(*_):   # what train does on Ctrl-C: save, say so, exit EXIT_INTERRUPTED
    write([1])
    ckpt = run / "checkpoints" / "step-1"   # the files that make a checkpoint complete
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "meta.json").write_text("{}"); (ckpt / "model.safetensors").write_bytes(b"")
    print("interrupted at step 1"); sys.exit(75)

abort = sweep / ("abort-" + run.parent.name)   # aborted (exit 130) before any checkpoint
if abort.exists():
    abort.unlink(); write([1]); sys.exit(130)

marker = sweep / ("ctrl-c-" + run.parent.name)   # this trial presses Ctrl-C on the sweep
if marker.exists() and not a.resume:
    marker.unlink()
    signal.signal(signal.SIGINT, stop)
    os.kill(os.getppid(), signal.SIGINT)
    time.sleep(30)
    sys.exit(1)   # never reached: the sweep forwards one SIGINT
if "GPTKIT_SWEEP_TRIAL" in os.environ:   # set by a sweep with a pruner
    from gpt_eval.sweep.pruning import trial_from_env
    reporter = trial_from_env()
    for step in (1, 2, 3):
        if reporter.report(step, loss + 1 / step):
            stop()
write([1, 2, 3])
print("done", sets)
"""


@pytest.fixture
def fake_train(tmp_path: Path) -> list[str]:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    return [sys.executable, str(script)]


def write_sweep(tmp_path: Path, body: str) -> Path:
    (tmp_path / "base.yaml").write_text(
        "optim:\n  lr: 1.0e-3\n  min_lr: 0\ntrain:\n  max_steps: 10\n"
    )
    path = tmp_path / "sweep.yaml"
    path.write_text("base: base.yaml\n" + body)
    return path


def calls(out: Path) -> list[str]:
    return (out / "calls.log").read_text().split()


def quiet(_: str) -> None:
    return None


def test_yaml_reads_exponent_floats_and_resolves_base_next_to_the_file(tmp_path: Path) -> None:
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-3, 3e-4]\n"))
    assert spec.grid == {"optim.lr": [1e-3, 3e-4]}
    assert spec.base == tmp_path / "base.yaml"
    assert (spec.metric, spec.sampler, spec.pruner) == ("final_val_loss", "grid", None)


def test_grid_runs_every_combination_once_and_the_budget_caps_it(
    tmp_path: Path, fake_train: list[str]
) -> None:
    body = "grid:\n  optim.lr: [0.1, 0.01]\n  optim.weight_decay: [0.0, 0.2]\n"
    spec = load_sweep(write_sweep(tmp_path, body + "set:\n  train.max_steps: 5\n"))
    table = run_sweep(spec, tmp_path / "out", fake_train, progress=False, log=quiet).table
    pairs = list(zip(table["optim.lr"], table["optim.weight_decay"], strict=True))
    assert sorted(pairs) == sorted((lr, wd) for lr in (0.1, 0.01) for wd in (0.0, 0.2))
    assert sorted(table["trial"]) == [f"trial-{i:03d}" for i in range(4)]
    capped = run_sweep(spec, tmp_path / "out3", fake_train, max_trials=3, progress=False, log=quiet)
    assert len(capped.table) == 3
    assert len(set(calls(tmp_path / "out3"))) == 3


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_random_and_tpe_draw_inside_their_bounds_and_count(
    tmp_path: Path, fake_train: list[str], sampler: str
) -> None:
    body = (
        f"sampler: {sampler}\n"
        "random:\n"
        "  optim.lr: {log_uniform: [1e-4, 1e-2]}\n"
        "  optim.weight_decay: {uniform: [0.0, 0.2]}\n"
        "  train.batch_size: {int_uniform: [1, 3]}\n"
        "  model.norm: {choice: [layernorm, rmsnorm]}\n"
        "samples: 8\nseed: 7\n"
    )
    spec = load_sweep(write_sweep(tmp_path, body))
    table = run_sweep(spec, tmp_path / "out", fake_train, progress=False, log=quiet).table
    assert len(table) == 8
    assert set(table["status"]) == {"ok"}
    assert table["optim.lr"].between(1e-4, 1e-2).all()
    assert table["optim.weight_decay"].between(0.0, 0.2).all()
    assert set(table["train.batch_size"]) <= {1, 2, 3}
    assert set(table["model.norm"]) <= {"layernorm", "rmsnorm"}
    lrs = [math.log10(v) for v in table["optim.lr"]]
    assert min(lrs) < -3 < max(lrs)  # log-uniform spreads over both decades


def test_grid_with_random_draws_samples_per_grid_point(
    tmp_path: Path, fake_train: list[str]
) -> None:
    body = "grid:\n  optim.lr: [1e-2, 1e-3]\nrandom:\n  optim.weight_decay: {uniform: [0, 0.2]}\n"
    spec = load_sweep(write_sweep(tmp_path, body + "samples: 2\n"))
    table = run_sweep(spec, tmp_path / "out", fake_train, progress=False, log=quiet).table
    assert sorted(table["optim.lr"]) == [1e-3, 1e-3, 1e-2, 1e-2]
    assert table["optim.weight_decay"].nunique() == 4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("grid:\n  optim.lr: 0.1\n", "must be a non-empty list"),
        ("random:\n  optim.lr: {loguniform: [1, 2]}\n", "did you mean 'log_uniform'"),
        ("random:\n  optim.lr: {uniform: [2, 1]}\n", "low < high"),
        ("random:\n  optim.lr: {log_uniform: [0, 1]}\n", "positive low bound"),
        ("grids:\n  optim.lr: [1]\n", "unknown key 'grids'.*did you mean 'grid'"),
        ("metric: loss\ngrid:\n  optim.lr: [1]\n", "metric 'loss'"),
        ("seed: 1\n", "sweeps nothing"),
        ("sampler: tpd\ngrid:\n  optim.lr: [1]\n", "did you mean 'tpe'"),
        ("sampler: grid\nrandom:\n  optim.lr: [1, 2]\n", "use sampler random or tpe"),
        ("pruner: mean\ngrid:\n  optim.lr: [1]\n", "pruner 'mean'"),
        ("pruner: median\nmetric: tokens_per_sec\ngrid:\n  optim.lr: [1]\n", "needs metric"),
    ],
)
def test_bad_sweep_files_name_the_problem(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(EvalError, match=message):
        load_sweep(write_sweep(tmp_path, body))


def test_missing_base_config_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("base: nowhere.yaml\ngrid:\n  optim.lr: [1]\n")
    with pytest.raises(EvalError, match=r"base config 'nowhere\.yaml'"):
        load_sweep(path)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("grid:\n  optim.lrr: [0.1]\n", "optim.lrr"),
        ("grid:\n  optim.lr: [0.1, fast]\n", "optim.lr"),
        ("random:\n  optim.lr: {uniform: [-1, 0.1]}\n", "optim.lr"),
        ("grid:\n  optim.lr: [0.1]\nset:\n  train.max_steps: 0\n", "train.max_steps"),
    ],
)
def test_an_invalid_trial_value_is_one_line_before_anything_runs(
    tmp_path: Path, fake_train: list[str], body: str, names: str
) -> None:
    spec = load_sweep(write_sweep(tmp_path, body))
    with pytest.raises(EvalError) as exc:
        run_sweep(spec, tmp_path / "out", fake_train, progress=False, log=quiet)
    message = str(exc.value)
    assert names in message
    assert str(spec.path) in message
    assert "\n" not in message
    assert not (tmp_path / "out").exists()


def test_values_survive_the_set_round_trip() -> None:
    import yaml

    for value in (1e-5, 3e-4, 0.001, 12, True, "rope", 1.5e20):
        assert yaml.safe_load(format_value(value)) == value


def test_sweep_records_failures_and_a_rerun_runs_nothing_new(
    tmp_path: Path, fake_train: list[str]
) -> None:
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-2, 0.5, 1e-3, 3e-5]\n"))
    out = tmp_path / "out"
    lines: list[str] = []
    result = run_sweep(spec, out, fake_train, parallel=2, progress=False, log=lines.append)

    table = pd.read_csv(out / "results.csv")
    assert list(table["optim.lr"]) == [1e-3, 1e-2, 3e-5, 0.5]
    assert list(table["status"]) == ["ok", "ok", "ok", "failed"]
    best = table.iloc[0]
    assert best["final_val_loss"] == pytest.approx(1 + 1 / 3)
    assert best["best_val_loss"] == pytest.approx(1 + 1 / 3)
    assert best["final_train_loss"] == pytest.approx(1 + 1 / 3 + 0.1)
    assert (best["tokens_per_sec"], best["steps"]) == (100, 3)
    assert best["wall_time_s"] > 0
    assert "error: optim.lr = 0.5 diverged (exit code 2)" in table.iloc[3]["error"]
    assert result.best is not None
    assert result.best["trial"] == best["trial"]

    md = (out / "results.md").read_text()
    assert "sorted by final_val_loss" in md
    assert md.index(best["trial"]) < md.index(table.iloc[3]["trial"])
    import matplotlib.image

    assert matplotlib.image.imread(out / "final_val_loss_vs_keys.png").ndim == 3
    assert "lr: 0.001" in (out / "best_config.yaml").read_text()
    assert any("[4/4]" in line for line in lines)
    assert len(calls(out)) == 4

    # Rerun: every trial is finished (ok or failed), so nothing runs and the results stay.
    before = (out / "results.csv").read_text()
    run_sweep(spec, out, fake_train, progress=False, log=lines.append)
    assert len(calls(out)) == 4
    assert (out / "results.csv").read_text() == before
    assert "4 trial(s) already finished, 0 to run" in lines[-2]

    # --retry-failed runs the failed trial's values again, in place of the old row.
    again = run_sweep(spec, out, fake_train, retry_failed=True, progress=False, log=quiet)
    assert calls(out)[4:] == ["trial-004"]
    assert len(again.table) == 4
    assert "trial-004" in set(again.table["trial"])


def test_a_sweep_stopped_by_ctrl_c_continues_its_trial(
    tmp_path: Path, fake_train: list[str]
) -> None:
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-2, 1e-3, 1e-4]\n"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "ctrl-c-trial-001").touch()
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, fake_train, progress=False, log=quiet)
    assert calls(out) == ["trial-000", "trial-001"]
    assert not (out / "results.csv").exists()

    result = run_sweep(spec, out, fake_train, progress=False, log=quiet)
    assert calls(out)[2:] == ["trial-001:resume", "trial-002"]
    assert list(result.table["status"]) == ["ok"] * 3
    assert result.table["steps"].tolist() == [3, 3, 3]


def test_a_trial_aborted_before_its_first_checkpoint_starts_again(
    tmp_path: Path, fake_train: list[str]
) -> None:
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-2, 1e-3]\n"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "abort-trial-000").touch()
    run_sweep(spec, out, fake_train, progress=False, log=quiet)
    assert calls(out) == ["trial-000", "trial-001"]

    # Nothing to continue: `train --resume` would refuse the folder, so it runs afresh.
    result = run_sweep(spec, out, fake_train, progress=False, log=quiet)
    assert calls(out)[2:] == ["trial-000"]
    assert list(result.table["status"]) == ["ok", "ok"]
    assert result.table["steps"].tolist() == [3, 3]


def test_a_pruned_trial_is_marked_pruned(tmp_path: Path, fake_train: list[str]) -> None:
    body = (
        "sampler: random\npruner: {median: {startup_trials: 1}}\ngrid:\n  optim.lr: [1e-3, 1e-2]\n"
    )
    spec = load_sweep(write_sweep(tmp_path, body))
    out = tmp_path / "out"
    result = run_sweep(spec, out, fake_train, progress=False, log=quiet)
    table = pd.read_csv(out / "results.csv")
    assert list(table["status"]) == ["ok", "pruned"]
    assert table["optim.lr"].tolist() == [1e-3, 1e-2]
    assert table["error"].iloc[1] == "pruned at step 1"
    assert table["steps"].tolist() == [3, 1]
    assert result.best is not None
    assert result.best["trial"] == "trial-000"
    # A pruned trial is finished: a rerun leaves it alone.
    run_sweep(spec, out, fake_train, progress=False, log=quiet)
    assert len(calls(out)) == 2


def test_a_different_sweep_in_the_same_folder_is_refused(
    tmp_path: Path, fake_train: list[str]
) -> None:
    out = tmp_path / "out"
    first = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-2]\n"))
    run_sweep(first, out, fake_train, progress=False, log=quiet)
    other = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-3]\n"))
    with pytest.raises(EvalError, match=r"holds a different sweep \(its grid differ"):
        run_sweep(other, out, fake_train, progress=False, log=quiet)


def test_a_command_that_cannot_start_is_a_failed_trial(tmp_path: Path) -> None:
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-2]\n"))
    result = run_sweep(spec, tmp_path / "out", [str(tmp_path / "no-such-train")],
                       progress=False, log=quiet)  # fmt: skip
    assert result.best is None
    assert result.table.iloc[0]["status"] == "failed"
    assert "cannot start" in result.table.iloc[0]["error"]


def test_markdown_table_formats_numbers_and_escapes_pipes() -> None:
    frame = pd.DataFrame({"a": [0.000123456, float("nan")], "b": ["x|y", "z"]})
    assert markdown_table(frame, ["a", "b"]).splitlines() == [
        "| a | b |",
        "|---|---|",
        "| 0.0001235 | x\\|y |",
        "|  | z |",
    ]
