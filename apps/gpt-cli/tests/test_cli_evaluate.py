"""`uv run evaluate` end to end: loss, perplexity and bits per byte of a tiny trained run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from gpt_cli import evaluate
from gpt_cli import train as train_cli

TEXT = "Be not afraid of greatness — some are born great, some achieve greatness.\n" * 30


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer char model trained for a few steps."""
    root = tmp_path_factory.mktemp("evaluate")
    (root / "text.txt").write_text(TEXT)
    (root / "tiny.yaml").write_text(
        "model: {max_seq_len: 16, d_model: 32, n_layers: 1, n_heads: 2}\n"
        f"data: {{dir: {root / 'data'}, input: [{root / 'text.txt'}], tokenizer: char}}\n"
        "optim: {lr: 3.0e-3, warmup_steps: 1}\n"
        "train: {max_steps: 2, batch_size: 4, device: cpu}\n"
        "log: {log_interval: 1, eval_interval: 2, eval_batches: 1, sample_interval: 0,\n"
        "      checkpoint_interval: 2, progress: false}\n"
    )
    train_cli.main(["--config", str(root / "tiny.yaml"), "--run-dir", str(root / "run")])
    return root / "run"


def test_text_file_gives_loss_perplexity_and_bits_per_byte(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "some are born great — some achieve greatness, and some are not afraid of it."
    (tmp_path / "eval.txt").write_text(text)
    out = tmp_path / "eval.json"
    evaluate.main(["--run", str(run_dir), "--input", str(tmp_path / "eval.txt"),
                   "--json", str(out), "--device", "cpu"])  # fmt: skip
    printed = capsys.readouterr().out
    assert "bits per byte" in printed
    assert f"wrote {out}" in printed
    r = json.loads(out.read_text())
    assert {"loss", "perplexity", "bits_per_byte", "tokens", "bytes", "windows", "step",
            "checkpoint", "input", "seq_len"} <= set(r)  # fmt: skip
    assert r["seq_len"] == 16
    assert r["tokens"] == len(text) - 1  # char tokens: every char but the first is scored
    assert r["windows"] == math.ceil(r["tokens"] / 16)
    assert r["bytes"] == len(text[1:].encode()) > r["tokens"]  # the dash is 3 bytes
    assert 0 < r["loss"] < 10
    assert r["perplexity"] == pytest.approx(math.exp(r["loss"]))
    assert r["bits_per_byte"] == pytest.approx(r["loss"] * r["tokens"] / math.log(2) / r["bytes"])
    assert r["step"] == 2


def test_prepared_split_of_the_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evaluate.main(["--run", str(run_dir), "--split", "val", "--max-tokens", "50"])
    printed = capsys.readouterr().out
    assert "val.bin" in printed
    assert "tokens scored  49" in printed


def test_missing_run_folder_and_input(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--run", str(tmp_path / "nope"), "--input", str(tmp_path / "x.txt")])
    assert exc.value.code == 2
    assert "run folder not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--run", str(run_dir), "--input", str(tmp_path / "x.txt")])
    assert exc.value.code == 2
    assert "input file not found" in capsys.readouterr().err


def test_characters_outside_a_char_vocabulary_are_skipped_and_counted(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "Z", "%" and "€" never occur in the training text: the rest of the file is still scored.
    (tmp_path / "odd.txt").write_text("Be not afraid Z of greatness %% — some are born € great.")
    out = tmp_path / "odd.json"
    evaluate.main(["--run", str(run_dir), "--input", str(tmp_path / "odd.txt"),
                   "--json", str(out), "--device", "cpu"])  # fmt: skip
    printed = capsys.readouterr().out
    assert "skipped        4 characters not in the vocabulary" in printed
    report = json.loads(out.read_text())
    assert report["skipped_chars"] == 4
    assert sorted(report["skipped_distinct"]) == sorted("%Z€")
    assert report["tokens"] == len("Be not afraid Z of greatness %% — some are born € great.") - 5


def test_threads_sets_torch_threads_and_refuses_zero(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        evaluate.main(["--run", str(run_dir), "--split", "val", "--max-tokens", "20",
                       "--threads", "1"])  # fmt: skip
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--run", str(run_dir), "--split", "val", "--threads", "0"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == (
        "error: threads must be an integer >= 1 (--threads N, train.threads), got 0\n"
    )
