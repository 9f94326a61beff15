"""`uv run train --explain N` / `--verbose`: what it prints, and that training is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from gpt_cli.train import main
from gpt_train.metrics import read_metrics
from gpt_train.runs import load_run

TEXT = "First Citizen: we are accounted poor citizens, the patricians good.\n" * 40
CONFIG = """\
model: {{max_seq_len: 16, d_model: 32, n_layers: 2, n_heads: 4, attention: {attention}}}
data: {{dir: {root}/data, input: [{root}/text.txt], tokenizer: char}}
optim: {{lr: 3.0e-3, warmup_steps: 1}}
train: {{max_steps: 4, batch_size: 3, device: cpu, seed: 7}}
log: {{log_interval: 1, eval_interval: 2, eval_batches: 1, sample_interval: 0,
      checkpoint_interval: 4, progress: false}}
"""


def config(root: Path, attention: str = "sdpa") -> Path:
    (root / "text.txt").write_text(TEXT)
    path = root / "tiny.yaml"
    path.write_text(CONFIG.format(root=root, attention=attention))
    return path


def losses(run: Path) -> list[tuple[str, str, str, str]]:
    rows = read_metrics(run / "metrics.csv")
    return [(r["step"], r["train_loss"], r["val_loss"], r["grad_norm"]) for r in rows]


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_explain_prints_the_step_and_changes_no_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], attention: str
) -> None:
    cfg = config(tmp_path, attention)
    main(["--config", str(cfg), "--run-dir", str(tmp_path / "plain")])
    capsys.readouterr()
    args = ["--config", str(cfg), "--run-dir", str(tmp_path / "explained")]
    main([*args, "--explain", "1", "--set", "log.explain_interval=3"])
    out = capsys.readouterr().out
    assert [n for n in range(1, 5) if f"=== explain step {n}:" in out] == [1, 3]
    assert out.count("Q (3, 4, 16, 8)  K (3, 4, 16, 8)  V (3, 4, 16, 8)") == 2 * 2  # 2 layers
    assert "scale = 1/sqrt(8) = 0.3536" in out
    assert "      1 1 0 0 0" in out
    assert out.count("every row of weights sums to 1: yes") == 2 * 2
    assert "blocks.1.mlp.fc.weight" in out
    assert "learning rate" in out
    # The hooks observe: the explained run's every logged number equals the plain run's.
    assert losses(tmp_path / "explained") == losses(tmp_path / "plain")
    final = [load_run(tmp_path / name).model.state_dict() for name in ("explained", "plain")]
    assert all(torch.equal(final[0][k], final[1][k]) for k in final[1])  # bit for bit


def test_verbose_is_explain_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path)
    main(["--config", str(cfg), "--run-dir", str(tmp_path / "run"), "--verbose"])
    out = capsys.readouterr().out
    assert "=== explain step 1:" in out
    assert "=== explain step 2:" not in out
    assert "ln(" in out
    assert "weights updated." in out
