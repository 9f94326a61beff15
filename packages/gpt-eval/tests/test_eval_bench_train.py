"""`uv run bench train`: the GPT-2 shape, MFU against a given or known peak, peak memory, a
one-line error without CUDA, and (on a GPU) the bf16 compiled GPT-2 figure."""

from __future__ import annotations

import argparse

import pytest
import torch
from gpt_core import GPT
from gpt_eval.bench_train import SHAPES, add_arguments, gpt_config, run
from gpt_train import TrainError
from gpt_train.precision import cuda_peak_flops


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_the_gpt2_shape_is_gpt2_small() -> None:
    with torch.device("meta"):  # no memory: only the parameter count is wanted
        model = GPT(gpt_config(SHAPES["gpt2"]))
    assert model.config.padded_vocab_size == 50304
    assert model.config.max_seq_len == 1024
    assert 124e6 < model.num_parameters() < 125e6  # GPT-2 small's 124M, tied head


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989),
        ("NVIDIA H200", 989),
        ("NVIDIA H100 PCIe", 756),
        ("NVIDIA A100-SXM4-80GB", 312),
        ("NVIDIA L4", 121),
        ("NVIDIA L40S", 362),
        ("NVIDIA L40", 181),
        ("Some Future GPU", 0),
    ],
)
def test_bf16_peaks_by_device_name(name: str, tflops: float) -> None:
    assert cuda_peak_flops(name, "bf16") == pytest.approx(tflops * 1e12)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_refused_before_any_work() -> None:
    with pytest.raises(TrainError, match=r"^bench train --device cuda: no CUDA device"):
        run(parse("--device", "cuda", "--shape", "gpt2", "--precision", "bf16"))


def test_cpu_run_reports_mfu_against_the_given_peak_and_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--batch", "1", "--steps", "1", "--rounds", "1", "--warmup", "0", "--threads", "1"]
    result = run(parse(*args, "--peak-tflops", "0.5"))
    assert result["peak_tflops"] == 0.5
    assert result["peak_memory_mb"] > 0
    for loop in ("ours", "transformers"):
        r = result[loop]
        expected = result["flops_per_token"] * r["tokens_per_sec"] / 0.5e12
        assert r["mfu"] == pytest.approx(expected)
    printed = capsys.readouterr().out
    assert "peak for MFU: 500.0 GFLOP/s (--peak-tflops)" in printed
    assert "peak memory:" in printed


def test_the_ratio_is_reported_per_round_as_well(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--batch", "1", "--steps", "1", "--rounds", "3", "--warmup", "0", "--threads", "1"]
    result = run(parse(*args))
    per_round = result["speedup_per_round"]
    assert len(per_round) == 3
    # The whole run's ratio is a weighted mean of the rounds' ratios.
    assert per_round[0] <= result["speedup"] <= per_round[-1]
    printed = capsys.readouterr().out
    assert "target >= 1.3x on a quiet machine" in printed
    assert f"per round: median {per_round[1]:.2f}x" in printed


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpt2_bf16_compiled_on_cuda() -> None:
    args = ["--device", "cuda", "--shape", "gpt2", "--precision", "bf16", "--compile"]
    result = run(parse(*args, "--steps", "5", "--rounds", "1"))
    ours = result["ours"]
    assert ours["tokens_per_sec"] > 0
    assert result["peak_memory_mb"] > 0
    if result["peak_tflops"]:  # a GPU in the table
        assert 0 < ours["mfu"] < 1
