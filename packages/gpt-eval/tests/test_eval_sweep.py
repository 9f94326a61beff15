"""The sweep engine: parsing, grid/random expansion, key checks, trials, resume and results.

Trials run a fake `train` (a small Python script) that writes a metrics.csv whose loss
depends on the learning rate, and fails for one value, so the engine is tested in isolation.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from gpt_eval import EvalError
from gpt_eval.sweep import (
    SweepSpec,
    expand_trials,
    format_value,
    load_sweep,
    markdown_table,
    run_sweep,
    validate_keys,
)

FAKE_TRAIN = r"""
import argparse, math, pathlib, sys
p = argparse.ArgumentParser()
p.add_argument("--config"); p.add_argument("--run-dir"); p.add_argument("--set", action="append")
a = p.parse_args()
sets = dict(s.split("=", 1) for s in a.set or [])
run = pathlib.Path(a.run_dir)
with open(run.parent.parent / "calls.log", "a") as f:
    f.write(run.parent.name + "\n")
lr = float(sets["optim.lr"])
if lr >= 0.5:
    print("step 1 ...")
    print("error: optim.lr = 0.5 diverged", file=sys.stderr)
    sys.exit(2)
run.mkdir(parents=True)
loss = 1 + abs(math.log10(lr) + 3)   # best at lr = 1e-3
rows = ["step,tokens,train_loss,val_loss,lr,grad_norm,tokens_per_sec,mfu,peak_mem_mb,elapsed_s"]
for step in (1, 2, 3):
    val = loss + 1 / step
    rows.append(f"{step},{step * 64},{val + 0.1},{val if step != 2 else ''},{lr},1,100,0,0,0.1")
(run / "metrics.csv").write_text("\n".join(rows) + "\n")
print("done", sets)
"""


@pytest.fixture
def fake_train(tmp_path: Path) -> list[str]:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    return [sys.executable, str(script)]


def write_sweep(tmp_path: Path, body: str) -> Path:
    (tmp_path / "base.yaml").write_text("optim:\n  lr: 1.0e-3\ntrain:\n  max_steps: 10\n")
    path = tmp_path / "sweep.yaml"
    path.write_text("base: base.yaml\n" + body)
    return path


def test_yaml_reads_exponent_floats_and_resolves_base_next_to_the_file(tmp_path: Path) -> None:
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-3, 3e-4]\n"))
    assert spec.grid == {"optim.lr": [1e-3, 3e-4]}
    assert spec.base == tmp_path / "base.yaml"
    assert spec.metric == "final_val_loss"


def test_grid_is_the_cartesian_product_and_the_budget_caps_it(tmp_path: Path) -> None:
    body = (
        "grid:\n  optim.lr: [0.1, 0.01]\n  train.batch_size: [4, 8, 16]\n"
        "set:\n  train.max_steps: 5\n"
    )
    spec = load_sweep(write_sweep(tmp_path, body))
    trials = expand_trials(spec)
    assert [t.name for t in trials][:2] == ["trial-000", "trial-001"]
    assert len(trials) == 6
    assert {(t.overrides["optim.lr"], t.overrides["train.batch_size"]) for t in trials} == {
        (lr, bs) for lr in (0.1, 0.01) for bs in (4, 8, 16)
    }
    assert all(t.overrides["train.max_steps"] == 5 for t in trials)
    assert len(expand_trials(spec, max_trials=4)) == 4


def test_random_search_is_seeded_and_inside_its_bounds(tmp_path: Path) -> None:
    body = (
        "random:\n"
        "  optim.lr: {log_uniform: [1e-4, 1e-2]}\n"
        "  optim.weight_decay: {uniform: [0.0, 0.2]}\n"
        "  model.n_layers: {int_uniform: [1, 3]}\n"
        "  model.norm: {choice: [layernorm, rmsnorm]}\n"
        "samples: 20\nseed: 7\n"
    )
    spec = load_sweep(write_sweep(tmp_path, body))
    trials = expand_trials(spec)
    assert len(trials) == 20
    assert trials == expand_trials(spec)  # same seed, same trials (resume relies on it)
    for t in trials:
        assert 1e-4 <= t.overrides["optim.lr"] <= 1e-2
        assert 0.0 <= t.overrides["optim.weight_decay"] <= 0.2
        assert t.overrides["model.n_layers"] in (1, 2, 3)
        assert t.overrides["model.norm"] in ("layernorm", "rmsnorm")
    lrs = [math.log10(t.overrides["optim.lr"]) for t in trials]
    assert min(lrs) < -3 < max(lrs)  # log-uniform spreads over both decades
    other = SweepSpec(**{**spec.__dict__, "seed": 8})
    assert expand_trials(other) != trials


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


def test_unknown_key_gets_a_suggestion(tmp_path: Path) -> None:
    schema: dict[str, Any] = {"optim.lr": float, "optim.min_lr": float, "train.max_steps": int}
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lrr: [0.1]\n"))
    with pytest.raises(EvalError, match=r"unknown config key 'optim.lrr'.*did you mean 'optim.lr'"):
        validate_keys(spec, schema, expand_trials(spec))
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [fast]\n"))
    with pytest.raises(EvalError, match=r"value 'fast' for 'optim\.lr'"):
        validate_keys(spec, schema, expand_trials(spec))


def test_values_survive_the_set_round_trip() -> None:
    import yaml

    for value in (1e-5, 3e-4, 0.001, 12, True, "rope", 1.5e20):
        assert yaml.safe_load(format_value(value)) == value


def test_sweep_runs_records_failures_and_resumes(tmp_path: Path, fake_train: list[str]) -> None:
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-2, 0.5, 1e-3, 1e-4]\n"))
    out = tmp_path / "out"
    lines: list[str] = []
    result = run_sweep(spec, out, fake_train, parallel=2, log=lines.append)

    table = pd.read_csv(out / "results.csv")
    assert list(table["trial"]) == ["trial-002", "trial-000", "trial-003", "trial-001"]
    assert list(table["status"]) == ["ok", "ok", "ok", "failed"]
    best = table.iloc[0]
    assert best["optim.lr"] == pytest.approx(1e-3)
    assert best["final_val_loss"] == pytest.approx(1 + 1 / 3)
    assert best["best_val_loss"] == pytest.approx(1 + 1 / 3)
    assert best["final_train_loss"] == pytest.approx(1 + 1 / 3 + 0.1)
    assert best["tokens_per_sec"] == 100
    assert best["steps"] == 3
    assert best["wall_time_s"] > 0
    assert "error: optim.lr = 0.5 diverged (exit code 2)" in table.iloc[3]["error"]
    assert result.best is not None
    assert result.best["trial"] == "trial-002"

    md = (out / "results.md").read_text()
    assert "sorted by final_val_loss" in md
    assert md.index("trial-002") < md.index("trial-000") < md.index("trial-001")
    import matplotlib.image

    assert matplotlib.image.imread(out / "final_val_loss_vs_keys.png").ndim == 3
    assert "lr: 0.001" in (out / "best_config.yaml").read_text()
    record = json.loads((out / "trial-001" / "trial.json").read_text())
    assert record["status"] == "failed"
    assert record["overrides"] == {"optim.lr": 0.5}
    assert any("[4/4]" in line for line in lines)
    assert len((out / "calls.log").read_text().split()) == 4

    # Resume: finished trials (ok or failed) are skipped; an unfinished one runs again.
    (out / "trial-003" / "trial.json").unlink()
    again = run_sweep(spec, out, fake_train, log=lines.append)
    assert (out / "calls.log").read_text().split()[4:] == ["trial-003"]
    assert list(again.table["trial"]) == list(table["trial"])
    run_sweep(spec, out, fake_train, retry_failed=True, log=lines.append)
    assert (out / "calls.log").read_text().split()[5:] == ["trial-001"]


def test_a_different_sweep_in_the_same_folder_is_refused(
    tmp_path: Path, fake_train: list[str]
) -> None:
    out = tmp_path / "out"
    run_sweep(load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-2]\n")), out, fake_train,
              log=lambda _: None)  # fmt: skip
    other = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-3]\n"))
    with pytest.raises(EvalError, match="holds a trial of a different sweep"):
        run_sweep(other, out, fake_train, log=lambda _: None)


def test_a_command_that_cannot_start_is_a_failed_trial(tmp_path: Path) -> None:
    spec = load_sweep(write_sweep(tmp_path, "grid:\n  optim.lr: [1e-2]\n"))
    result = run_sweep(spec, tmp_path / "out", [str(tmp_path / "no-such-train")],
                       log=lambda _: None)  # fmt: skip
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
