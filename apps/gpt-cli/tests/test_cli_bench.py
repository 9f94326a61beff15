"""The `uv run bench` dispatcher: each gpt_eval.bench_<name> module's contract, and the wiring
of subcommands, `all` and --json (checked with stand-in modules so it runs in milliseconds)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_cli import bench


@pytest.mark.parametrize("name", list(bench.SUBCOMMANDS))
def test_bench_module_follows_the_contract(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    if importlib.util.find_spec(f"gpt_eval.bench_{name}") is None:
        pytest.skip(f"gpt_eval.bench_{name} is not written yet")
    module = importlib.import_module(f"gpt_eval.bench_{name}")
    assert callable(module.add_arguments)
    assert callable(module.run)
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    assert parser.parse_args([]).device == "cpu"  # every bench runs on CPU by default
    with pytest.raises(SystemExit) as exc:
        bench.main([name, "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert "--device" in help_text
    assert "--json" in help_text


def fake_bench(name: str, calls: list[tuple[str, str]]) -> types.ModuleType:
    """A stand-in bench module that records how it was called."""
    module = types.ModuleType(f"gpt_eval.bench_{name}")

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--device", default="cpu")
        parser.add_argument("--size", type=int, default=3)

    def run(args: argparse.Namespace) -> dict[str, Any]:
        calls.append((name, args.device))
        print(f"table for {name}")
        return {"name": name, "size": args.size, "tokens_per_sec": 123.0}

    module.add_arguments = add_arguments  # type: ignore[attr-defined]
    module.run = run  # type: ignore[attr-defined]
    return module


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    record: list[tuple[str, str]] = []
    for name in bench.SUBCOMMANDS:
        monkeypatch.setitem(sys.modules, f"gpt_eval.bench_{name}", fake_bench(name, record))
    return record


def test_one_subcommand_passes_its_options_and_writes_json(
    calls: list[tuple[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "deep" / "train.json"
    bench.main(["train", "--size", "7", "--device", "meta", "--json", str(out)])
    assert calls == [("train", "meta")]
    assert json.loads(out.read_text()) == {"name": "train", "size": 7, "tokens_per_sec": 123.0}
    printed = capsys.readouterr().out
    assert "== bench train ==" in printed
    assert f"wrote {out}" in printed


def test_all_runs_every_bench_with_defaults(calls: list[tuple[str, str]], tmp_path: Path) -> None:
    out = tmp_path / "all.json"
    bench.main(["all", "--device", "cuda", "--json", str(out)])
    assert calls == [(name, "cuda") for name in bench.SUBCOMMANDS if name != "speedrun"]
    results = json.loads(out.read_text())
    assert list(results) == bench.ALL  # every bench but the minutes-long speedrun
    assert all(r["size"] == 3 for r in results.values())


def test_a_missing_bench_module_is_a_clean_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = bench._module

    def missing(name: str) -> Any:
        if name == "attention":
            raise ModuleNotFoundError(name)
        return real(name)

    monkeypatch.setattr(bench, "_module", missing)
    with pytest.raises(SystemExit) as exc:
        bench.main(["attention"])
    assert exc.value.code == 3
    assert "not yet available" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--device", "cuda", "--shape", "gpt2", "--precision", "bf16"],
        ["generate", "--device", "cuda"],
        ["attention", "--device", "cuda"],
    ],
)
def test_bench_on_cuda_without_cuda_is_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: bench {argv[0]} --device cuda: no CUDA device is available here "
        "(torch.cuda.is_available() is False); use auto or cpu"
    ]


def test_bench_names_an_unknown_device(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["attention", "--device", "gpu"])
    assert capsys.readouterr().err.strip() == (
        "error: bench attention --device gpu: unknown device "
        "(allowed: auto, cpu, cuda, cuda:N, mps)"
    )
