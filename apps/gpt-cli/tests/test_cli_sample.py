"""`uv run sample` end to end on a tiny run trained here in a few steps."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from gpt_cli import sample
from gpt_cli import train as train_cli

TEXT = "First Citizen: we are accounted poor citizens, the patricians good.\n" * 40


def train_tiny_run(root: Path) -> Path:
    """Train a 2-layer char model for a few steps; return its run folder."""
    (root / "text.txt").write_text(TEXT)
    (root / "tiny.yaml").write_text(
        "model: {max_seq_len: 32, d_model: 32, n_layers: 2, n_heads: 2}\n"
        f"data: {{dir: {root / 'data'}, input: [{root / 'text.txt'}], tokenizer: char}}\n"
        "optim: {lr: 3.0e-3, warmup_steps: 1}\n"
        "train: {max_steps: 4, batch_size: 4, device: cpu}\n"
        "log: {log_interval: 1, eval_interval: 2, eval_batches: 1, sample_interval: 0,\n"
        "      checkpoint_interval: 2, progress: false}\n"
    )
    run = root / "run"
    train_cli.main(["--config", str(root / "tiny.yaml"), "--run-dir", str(run)])
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("sample"))


def sample_out(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    sample.main(list(args))
    return capsys.readouterr().out


def test_same_seed_same_text_and_prompt_first(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--run", str(run_dir), "--prompt", "First", "--max-new-tokens", "30", "--seed", "3"]
    one = sample_out(capsys, *args)
    two = sample_out(capsys, *args)
    assert one == two
    assert one.startswith("First")
    assert len(one) > len("First") + 5
    other = sample_out(capsys, *args[:-1], "4")
    assert other != one


def test_stop_text_cuts_the_sample(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--run", str(run_dir), "--prompt", "F", "--max-new-tokens", "40", "--seed", "0"]
    full = sample_out(capsys, *base)[1:-1]  # drop the prompt and the final newline
    stop = full[5:7]
    cut = sample_out(capsys, *base, "--stop", stop)[1:-1]
    assert cut == full[: full.index(stop)]


def test_prompt_file_and_num_samples(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the\n\ncitizens\n")
    out = sample_out(capsys, "--run", str(run_dir), "--prompt-file", str(prompts),
                     "--num-samples", "2", "--max-new-tokens", "5", "--seed", "1")  # fmt: skip
    headers = [ln for ln in out.splitlines() if ln.startswith("--- prompt")]
    assert headers == [
        "--- prompt 1, sample 1 ---",
        "--- prompt 1, sample 2 ---",
        "--- prompt 2, sample 1 ---",
        "--- prompt 2, sample 2 ---",
    ]
    assert "\nthe" in out
    assert "\ncitizens" in out


def test_verbose_shows_top_five_with_probabilities(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = sample_out(capsys, "--run", str(run_dir), "--prompt", "the", "--max-new-tokens", "3",
                     "--seed", "0", "--verbose")  # fmt: skip
    steps = [ln for ln in out.splitlines() if ln.startswith("step ")]
    assert len(steps) == 3
    for line in steps:
        probs = [float(p) for p in re.findall(r"['\"] (\d\.\d{3})", line.split("|", 1)[1])]
        assert len(probs) == 5
        assert probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1.0 + 1e-6
    assert "--- text ---" in out


def test_attention_maps_are_saved(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if importlib.util.find_spec("gpt_core.tracing") is None:
        pytest.skip("gpt_core.tracing is not available yet")
    import matplotlib.image

    path = tmp_path / "att.png"
    sample.main(["--run", str(run_dir), "--prompt", "the citizens", "--max-new-tokens", "1",
                 "--attention", str(path)])  # fmt: skip
    assert str(path) in capsys.readouterr().err
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200
    assert image.shape[1] > 200


def test_missing_run_folder_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        sample.main(["--run", str(tmp_path / "nope"), "--prompt", "a"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "run folder not found" in err
    assert "Traceback" not in err


def test_a_device_that_is_not_there_is_named_by_the_flag(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        sample.main(["--run", str(run_dir), "--prompt", "a", "--device", "tpu"])
    assert capsys.readouterr().err.strip() == (
        "error: --device tpu: unknown device (allowed: auto, cpu, cuda, cuda:N, mps)"
    )


def test_unknown_checkpoint_lists_the_available_ones(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        sample.main(["--run", str(run_dir), "--checkpoint", "step-999", "--prompt", "a"])
    assert exc.value.code == 2
    assert "step-2" in capsys.readouterr().err


def test_verbose_shows_shapes_temperature_and_the_pick(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--run", str(run_dir), "--prompt", "First", "--max-new-tokens", "3", "--seed", "2"]
    out = sample_out(capsys, *args, "--temperature", "0.5", "--verbose")
    from gpt_train.runs import load_run

    vocab = load_run(run_dir).tokenizer.vocab_size
    assert f"prompt (1, 5) = (1, T) -> logits (1, 5, {vocab}) = (1, T, V)" in out
    assert f"logits[:, -1] (1, {vocab}) = (1, V) -> softmax(logits / 0.5)" in out
    steps = [ln for ln in out.splitlines() if ln.startswith("step ")]
    assert len(steps) == 3
    for line in steps:  # the top 5 at temperature 1 -> at 0.5: sharper, so the first gains
        pairs = re.findall(r"(\d\.\d{3})->(\d\.\d{3})", line)
        assert len(pairs) == 5
        assert float(pairs[0][1]) >= float(pairs[0][0])
        assert re.search(r"chose +'.+' \(id \d+\) p=\d\.\d{3}", line)
    text = out.split("--- text ---\n")[1].rstrip("\n")
    plain = sample_out(capsys, *args, "--temperature", "0.5")
    assert plain == "First" + text + "\n"  # the pick is what the plain run samples
    one = sample_out(capsys, *args, "--verbose")
    assert "->" not in one.split("\n", 3)[-1]  # temperature 1: one probability per token
