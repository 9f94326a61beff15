"""`uv run sample --interactive` driven through a pseudo-terminal, as a user at a terminal."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pexpect
import pytest
import torch
from gpt_cli import sample
from gpt_cli import train as train_cli
from gpt_core import SamplingConfig
from gpt_eval.errors import EvalError
from gpt_eval.interactive import Quit, Settings, apply_command, prompt_loop
from gpt_train.runs import load_run

TEXT = "First Citizen: we are accounted poor citizens, the patricians good.\n" * 40
REPO_ROOT = Path(__file__).resolve().parents[3]
PROMPT = "\r\n> "  # each reply ends with a newline; the characters > never occur in TEXT


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("interactive")
    (root / "text.txt").write_text(TEXT)
    (root / "tiny.yaml").write_text(
        "model: {max_seq_len: 32, d_model: 32, n_layers: 1, n_heads: 2}\n"
        f"data: {{dir: {root / 'data'}, input: [{root / 'text.txt'}], tokenizer: char}}\n"
        "optim: {lr: 3.0e-3, warmup_steps: 1}\n"
        "train: {max_steps: 4, batch_size: 4, device: cpu, threads: 1}\n"
        "log: {log_interval: 2, eval_interval: 4, eval_batches: 1, sample_interval: 0,\n"
        "      checkpoint_interval: 4, progress: false}\n"
    )
    run = root / "run"
    train_cli.main(["--config", str(root / "tiny.yaml"), "--run-dir", str(run)])
    return run


def _spawn(run: Path, *args: str) -> pexpect.spawn:
    """The real command in a terminal: through `uv run` when uv is there (it passes each
    Ctrl-C on once more, as at a real terminal), else the installed console script."""
    uv = shutil.which("uv")
    command = (
        [uv, "run", "--no-sync", "sample"] if uv else [str(Path(sys.executable).parent / "sample")]
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TERM": "dumb"}
    child = pexpect.spawn(
        command[0],
        [*command[1:], "--run", str(run), "--interactive", "--threads", "1", *args],
        env=env,
        cwd=REPO_ROOT,  # uv run finds the workspace from here
        encoding="utf-8",
        timeout=90,
        dimensions=(50, 400),  # wide: readline never wraps a long line
    )
    child.expect_exact("type a prompt, /help for the commands")
    child.expect_exact("> ")
    return child


def _reply(child: pexpect.spawn, line: str) -> str:
    """Send a line; return what came back before the next prompt (the echo and the final
    newline removed)."""
    child.sendline(line)
    child.expect_exact(PROMPT)
    out = str(child.before).replace("\r\n", "\n")
    echo, _, rest = out.partition("\n")
    assert echo == line
    return rest


@pytest.mark.slow
def test_a_session_streams_replies_and_changes_settings(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--seed", "3", "--max-new-tokens", "25"]
    sample.main(["--run", str(run_dir), "--prompt", "First", *base])
    plain = capsys.readouterr().out
    child = _spawn(run_dir, *base)
    # the reply is what `sample --prompt` continues the prompt with, for the same settings
    assert _reply(child, "First") == plain[len("First") : -1]
    assert _reply(child, "First") == plain[len("First") : -1]  # a fixed seed: the same again
    assert "temperature 0.7" in _reply(child, "/temp 0.7")
    assert _reply(child, "/temp hot") == "error: /temp hot: expected a number"
    assert _reply(child, "/topk 0").startswith("error: /topk 0: top_k must be >= 1")
    assert _reply(child, "/tmep 1") == (
        "error: unknown command /tmep (did you mean /temp?); /help lists the commands"
    )
    assert "/topp VALUE" in _reply(child, "/help")
    assert "top-k 5, top-p 0.9, seed off, max 8 tokens, verbose on" in "".join(
        _reply(child, c) for c in ("/topk 5", "/topp 0.9", "/seed off", "/max 8", "/verbose on")
    )
    verbose = _reply(child, "First")
    # the --verbose lines (the shapes, then each step's candidates), then the text
    assert verbose.startswith("shapes: prompt (1, 5) = (1, T)")
    assert "\nstep    0  chose" in verbose
    assert "\n--- text ---\n" in verbose
    # Ctrl-C during a long reply stops it and the session goes on
    assert "max 100000" in _reply(child, "/verbose off") + _reply(child, "/max 100000")
    _reply(child, "/temp 0")  # greedy: no end-of-text token cuts the reply short
    child.sendline("First")
    child.expect_exact("First\r\n")
    child.expect(r".{10}")  # it is streaming (pexpect's patterns match newlines too)
    child.sendintr()
    child.expect_exact("(stopped)" + PROMPT)
    assert "temperature 0" in _reply(child, "/settings")
    time.sleep(1.2)  # a separate press, not the echo of the last one
    child.sendintr()  # Ctrl-C at the prompt leaves
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before


@pytest.mark.slow
def test_ctrl_d_leaves_cleanly(run_dir: Path) -> None:
    child = _spawn(run_dir)
    assert _reply(child, "/seed 1").endswith("verbose off")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_the_loop_reports_bad_prompts_and_ends_on_quit(run_dir: Path) -> None:
    lines = iter(["QQ", "/max 3", "First", "/quit", "never read"])
    out: list[str] = []
    run = load_run(run_dir)
    end = prompt_loop(
        run, Settings(SamplingConfig(seed=0)), read=lambda _: next(lines), write=out.append
    )
    assert next(lines) == "never read"
    text = "".join(out)
    assert "error: char 'Q' (piece 0) is not in the vocabulary" in text  # then it goes on
    assert end.sampling.max_new_tokens == 3
    reply = text.split("max 3 tokens, verbose off\n")[1]
    assert len(reply) == 3 + 1  # three characters and the newline

    def interrupted(_: str) -> str:
        raise KeyboardInterrupt

    assert prompt_loop(run, end, read=interrupted, write=out.append) == end  # Ctrl-C: leave


def test_commands_change_only_what_they_name() -> None:
    start = Settings(SamplingConfig(max_new_tokens=50, temperature=1.0, seed=2))
    s, _ = apply_command(start, "/topk 40")
    s, _ = apply_command(s, "/seed off")
    assert s.sampling == SamplingConfig(max_new_tokens=50, temperature=1.0, top_k=40)
    s, shown = apply_command(s, "/verbose ON")
    assert s.verbose
    assert shown.endswith("verbose on")
    for bad, message in [
        ("/max -1", "/max -1: max_new_tokens must be an integer >= 0, got -1"),
        ("/topp 2", "/topp 2: top_p must be in (0, 1] (or None for no limit), got 2.0"),
        ("/verbose maybe", "/verbose maybe: expected on or off"),
        ("/seed", "/seed needs a value, e.g. /seed 1"),
        ("/xyzzy", "unknown command /xyzzy; /help lists the commands"),
    ]:
        with pytest.raises(EvalError) as exc:
            apply_command(s, bad)
        assert str(exc.value) == message
    with pytest.raises(Quit):
        apply_command(s, "/quit")


def test_interactive_refuses_a_prompt(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        sample.main(["--run", str(run_dir), "--interactive", "--prompt", "x"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_sample_threads_sets_torch_threads(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        sample.main(["--run", str(run_dir), "--prompt", "F", "--max-new-tokens", "3",
                     "--threads", "1"])  # fmt: skip
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert capsys.readouterr().out.startswith("F")
