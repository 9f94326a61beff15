"""`bench speedrun`: a few seconds of real training per run (a tiny model on a slice of tiny
Shakespeare), the report's fields, the ratio arithmetic, and one-line errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from gpt_cli import bench
from gpt_eval import bench_speedrun
from gpt_eval.errors import EvalError

CORPUS = Path(__file__).parents[3] / "corpora" / "tinyshakespeare.txt"


# Tiny models: on a busy machine torch's thread pool only waits on itself.
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(tmp_path: Path) -> Path:
    text = tmp_path / "small.txt"
    text.write_text(CORPUS.read_text()[:40_000])
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "model: {max_seq_len: 32, d_model: 32, n_layers: 1, n_heads: 2}\n"
        f"data: {{dir: {tmp_path / 'unused'}, input: [{text}]}}\n"
        "optim: {lr: 3.0e-3, warmup_steps: 5}\n"
        "train: {max_steps: 100000, batch_size: 8}\n"
        "log: {eval_interval: 1000, checkpoint_interval: 1000, sample_interval: 0, "
        "progress: false}\n"
    )
    return config


def args_for(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_speedrun.add_arguments(parser)
    base = ["--config", str(tiny_config(tmp_path)), "--out", str(tmp_path / "out")]
    return parser.parse_args([*base, "--eval-every-s", "0.3", *extra])


def test_a_short_race_reports_times_losses_tokens_and_ratios(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 5.0 is above the untrained loss (ln 60 = 4.1): reached at the first estimate by both;
    # 0.5 is never reached in seconds, so both runs use the whole budget.
    result = bench_speedrun.run(args_for(tmp_path, "--budget-s", "2", "--targets", "0.5,5"))
    assert result["targets"] == [5.0, 0.5]
    for name in ("ours", "peer"):
        r = result[name]
        first = r["evals"][0]
        assert r["time_to_target_s"]["5.00"] == first["elapsed_s"]
        assert r["time_to_target_s"]["0.50"] is None
        assert r["train_s"] >= 2.0  # ran to the budget
        assert r["final_val_loss"] == r["evals"][-1]["val_loss"]
        if len(r["evals"]) > 1:  # on a very busy machine the budget may end at the first
            assert r["final_val_loss"] < first["val_loss"]
        assert r["tokens_seen"] == r["evals"][-1]["tokens"] > 0
        assert r["tokens_per_sec"] == pytest.approx(r["tokens_seen"] / r["train_s"])
        assert 3000 < r["eval_tokens"] < 5000  # the whole val split (10% of 40k characters)
        assert (Path(r["run_dir"]) / "metrics.csv").is_file()
    assert result["ours"]["tokens_seen"] % (8 * 32) == 0  # the config's batch
    assert result["peer"]["tokens_seen"] % (12 * 64) == 0  # nanoGPT's batch 12 x 64
    ratio = result["ratios"]["5.00"]
    peer, ours = result["peer"]["time_to_target_s"]["5.00"], result["ours"]["time_to_target_s"]
    assert ratio == {"ratio": pytest.approx(peer / ours["5.00"]), "lower_bound": False}
    assert result["ratios"]["0.50"] == {"ratio": None, "lower_bound": False}
    saved = json.loads((Path(result["out"]) / "speedrun.json").read_text())
    assert saved["ours"]["time_to_target_s"] == result["ours"]["time_to_target_s"]
    out = capsys.readouterr().out
    assert f"wrote {Path(result['out']) / 'speedrun.json'}" in out
    assert "run folders: " in out
    assert "peer/ours" in out


def test_reaching_every_target_stops_the_run(tmp_path: Path) -> None:
    result = bench_speedrun.run(
        args_for(tmp_path, "--budget-s", "60", "--targets", "5", "--no-peer")
    )
    assert "peer" not in result
    assert "ratios" not in result
    assert len(result["ours"]["evals"]) == 1  # stopped at the first estimate, not at 60 s
    assert result["ours"]["train_s"] < 60


def summary(times: dict[str, float | None], train_s: float = 100.0) -> dict[str, Any]:
    return {"time_to_target_s": times, "train_s": train_s}


def test_ratios_are_peer_over_ours_with_a_lower_bound_when_the_peer_misses() -> None:
    ours = summary({"1.80": 20.0, "1.70": 50.0, "1.60": None})
    peer = summary({"1.80": 80.0, "1.70": None, "1.60": None}, train_s=300.5)
    assert bench_speedrun.ratios(ours, peer, budget_s=300.0) == {
        "1.80": {"ratio": 4.0, "lower_bound": False},
        "1.70": {"ratio": 300.5 / 50.0, "lower_bound": True},  # the peer ran 300.5 s in vain
        "1.60": {"ratio": None, "lower_bound": False},
    }
    faster = summary({"1.80": 10.0, "1.70": None, "1.60": None})
    assert bench_speedrun.ratios(ours, faster, 300.0)["1.80"]["ratio"] == 0.5


def test_targets_parse_highest_first_and_refuse_bad_text() -> None:
    assert bench_speedrun.parse_targets("1.6, 1.8,1.70") == (1.8, 1.7, 1.6)
    for bad in ("", "1.8,x", "-1", "nan", "1.8;1.7"):
        with pytest.raises(EvalError, match="--targets"):
            bench_speedrun.parse_targets(bad)


def base_argv(tmp_path: Path) -> list[str]:
    return ["--config", str(tiny_config(tmp_path)), "--out", str(tmp_path / "out")]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--targets", "1.8,fast"], "--targets '1.8,fast': expected positive val losses"),
        (["--config", "nowhere.yaml"], "config file not found: nowhere.yaml"),
        (["--set", "optim.lr=-1"], "optim.lr = -1.0 must be > 0"),
    ],
)
def test_bad_options_are_one_line_errors_before_training(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["speedrun", *base_argv(tmp_path), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert expected in err
    assert not (tmp_path / "out").exists()  # nothing was started
