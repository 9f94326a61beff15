"""Fine-tune a transformers GPT-2 through `train --init-from`, then `export` it back.

Checked against transformers and HF tokenizers themselves: the exported folder loads in
AutoModelForCausalLM / AutoTokenizer, gives our logits and generates our greedy text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from gpt_cli.export import main as export
from gpt_cli.sample import main as sample
from gpt_cli.train import main as train
from gpt_tokenizers import BPETokenizer
from gpt_train.metrics import read_metrics
from gpt_train.runs import load_run

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

EOT = "<|endoftext|>"
REPO = Path(__file__).resolve().parents[3]
CONFIG = """\
data: {{dir: {data}, input: [{text}]}}
optim: {{lr: 3.0e-3, min_lr: 3.0e-4, warmup_steps: 2}}
train: {{max_steps: 12, batch_size: 8, device: cpu, precision: fp32}}
log: {{log_interval: 2, eval_interval: 6, eval_batches: 2, sample_interval: 0,
      checkpoint_interval: 6, progress: false}}
"""


def _hf_folder(folder: Path, corpus: Path) -> Path:
    """A tiny random GPT-2 and a ByteLevel BPE trained on `corpus`, as HF writes them."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    tok.train([str(corpus)], trainers.BpeTrainer(vocab_size=400, initial_alphabet=alphabet))
    tok.add_special_tokens([EOT])
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=tok.get_vocab_size(), n_positions=32, n_embd=32, n_layer=2, n_head=2
    )
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the HF source folder, a run fine-tuned from it for 12 steps)."""
    tmp = tmp_path_factory.mktemp("ft")
    corpus = tmp / "corpus.txt"
    corpus.write_bytes((REPO / "corpora" / "tinyshakespeare.txt").read_bytes()[:40_000])
    src = _hf_folder(tmp / "gpt2-tiny", corpus)
    cfg = tmp / "ft.yaml"
    cfg.write_text(CONFIG.format(data=tmp / "data", text=corpus))
    run = tmp / "run"
    train(["--config", str(cfg), "--run-dir", str(run), "--init-from", str(src)])
    return src, run


def test_finetune_takes_model_and_tokenizer_from_the_folder(finetuned: tuple[Path, Path]) -> None:
    src, run = finetuned
    loaded = load_run(run)
    assert loaded.config.model.init_from == str(src)
    assert (loaded.config.model.d_model, loaded.config.model.n_layers) == (32, 2)
    hf_tok = tokenizers.Tokenizer.from_file(str(src / "tokenizer.json"))
    text = "ROMEO:\nWhat light through yonder window breaks?"
    assert loaded.tokenizer.encode(text) == hf_tok.encode(text).ids
    rows = read_metrics(run / "metrics.csv")
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[-1] < losses[0] - 0.3, losses


def test_hf_export_matches_transformers_logits_and_greedy_text(
    finetuned: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = finetuned
    out = tmp_path / "hf"
    export(["--run", str(run), "--format", "hf", "--out", str(out)])
    assert f"to {out}" in capsys.readouterr().out
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    ours = load_run(run)
    prompt = "ROMEO:\nWhat"
    ids = ours.tokenizer.encode(prompt)
    assert hf_tok(prompt)["input_ids"] == ids
    assert hf_tok.eos_token == EOT
    assert hf_tok.eos_token_id == ours.tokenizer.eot_id
    idx = torch.tensor([ids])
    with torch.no_grad():
        torch.testing.assert_close(hf(idx).logits, ours.model(idx)[0], atol=1e-4, rtol=1e-4)
    sample(
        [
            "--run",
            str(run),
            "--prompt",
            prompt,
            "--temperature",
            "0",
            "--max-new-tokens",
            "12",
            "--device",
            "cpu",
        ]
    )
    ours_text = capsys.readouterr().out
    gen = hf.generate(idx, max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0)
    theirs = hf_tok.decode(gen[0], skip_special_tokens=False)
    assert theirs.strip()
    assert theirs in ours_text, (theirs, ours_text)


def test_safetensors_and_tiktoken_exports(finetuned: tuple[Path, Path], tmp_path: Path) -> None:
    import tiktoken
    from gpt_core import GPT, GPTConfig
    from safetensors.torch import load_model

    _, run = finetuned
    ours = load_run(run)
    export(["--run", str(run), "--format", "safetensors", "--out", str(tmp_path / "st")])
    model = GPT(GPTConfig.from_dict(json.loads((tmp_path / "st" / "config.json").read_text())))
    load_model(model, str(tmp_path / "st" / "model.safetensors"))
    idx = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(idx)[0], ours.model(idx)[0])

    export(["--run", str(run), "--format", "tiktoken", "--out", str(tmp_path / "tt")])
    info: dict[str, Any] = json.loads((tmp_path / "tt" / "tiktoken.json").read_text())
    from tiktoken.load import load_tiktoken_bpe

    enc = tiktoken.Encoding(
        info["name"],
        pat_str=info["pat_str"],
        mergeable_ranks=load_tiktoken_bpe(str(tmp_path / "tt" / info["rank_file"])),
        special_tokens=info["special_tokens"],
    )
    text = f"O Romeo, Romeo! wherefore art thou Romeo?{EOT}\n"
    assert isinstance(ours.tokenizer, BPETokenizer)
    assert enc.encode(text, allowed_special="all") == ours.tokenizer.encode(
        text, allowed_special="all"
    )


def test_export_refuses_without_leaving_a_folder(
    finetuned: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, run = finetuned
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "mine.txt").write_text("precious")
    with pytest.raises(SystemExit):
        export(["--run", str(run), "--format", "hf", "--out", str(keep)])
    assert "is not empty; pass --overwrite" in capsys.readouterr().err
    assert (keep / "mine.txt").read_text() == "precious"
    export(["--run", str(run), "--format", "hf", "--out", str(keep), "--overwrite"])
    assert (keep / "config.json").is_file()
    assert not (keep / "mine.txt").exists()


def test_variants_gpt2_cannot_express_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_bytes((REPO / "corpora" / "tinyshakespeare.txt").read_bytes()[:5_000])
    cfg = tmp_path / "rope.yaml"
    cfg.write_text(
        CONFIG.format(data=tmp_path / "data", text=corpus)
        + "model: {max_seq_len: 16, d_model: 16, n_layers: 1, n_heads: 2, "
        "pos_encoding: rope}\n"
    )
    run = tmp_path / "run"
    train(
        [
            "--config",
            str(cfg),
            "--run-dir",
            str(run),
            "--max-steps",
            "1",
            "--set",
            "data.tokenizer=bpe",
            "--set",
            "data.vocab_size=300",
        ]
    )
    capsys.readouterr()
    with pytest.raises(SystemExit):
        export(["--run", str(run), "--format", "hf", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: GPT-2 export needs pos_encoding='learned'")
    assert "\n" not in err
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if "out" in p.name] == []  # no temporary left
    export(["--run", str(run), "--format", "safetensors", "--out", str(tmp_path / "st")])
    saved = json.loads((tmp_path / "st" / "config.json").read_text())
    assert saved["pos_encoding"] == "rope"  # our own format keeps any variant

    char_run = tmp_path / "char-run"
    train(
        [
            "--config",
            str(cfg),
            "--run-dir",
            str(char_run),
            "--max-steps",
            "1",
            "--set",
            "model.pos_encoding=learned",
            "--set",
            "data.dir=" + str(tmp_path / "d2"),
        ]
    )
    capsys.readouterr()
    for fmt in ("hf", "tiktoken"):
        with pytest.raises(SystemExit):
            export(["--run", str(char_run), "--format", fmt, "--out", str(tmp_path / "c")])
        err = capsys.readouterr().err.strip()
        assert f"--format {fmt} needs a byte-level BPE tokenizer; this run's is a char" in err
        assert not (tmp_path / "c").exists()
    assert [p.name for p in tmp_path.iterdir() if "out" in p.name] == []


def test_init_from_errors(
    finetuned: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src, run = finetuned
    cfg = tmp_path / "c.yaml"
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes((REPO / "corpora" / "tinyshakespeare.txt").read_bytes()[-20_000:])
    cfg.write_text(CONFIG.format(data=tmp_path / "data", text=corpus))
    cases = [
        (
            ["--init-from", str(src), "--set", "model.n_layers=4"],
            "model.n_layers = 4 contradicts the weights of model.init_from",
        ),
        (["--init-from", str(tmp_path / "nope")], "no such folder"),
        (["--init-from", "gpt2"], "model.init_from = 'gpt2': could not get it from the Hugging"),
    ]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for args, message in cases:
        with pytest.raises(SystemExit) as exc:
            train(["--config", str(cfg), "--run-dir", str(tmp_path / "r"), *args])
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2
        assert message in err
        assert "\n" not in err
        assert not (tmp_path / "r").exists()  # refused before the run folder was made
    # one of our runs is a source too: its latest checkpoint and its tokenizer
    again = tmp_path / "again"
    train(
        ["--config", str(cfg), "--run-dir", str(again), "--init-from", str(run), "--max-steps", "1"]
    )
    assert load_run(again).config.model.d_model == 32
    assert load_run(again).tokenizer.encode("Romeo") == load_run(run).tokenizer.encode("Romeo")
    capsys.readouterr()
    train(["--run-dir", str(again), "--resume", "--max-steps", "2"])  # its own config.yaml
    assert "finished 2 steps" in capsys.readouterr().out
