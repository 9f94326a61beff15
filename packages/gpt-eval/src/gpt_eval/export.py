"""`uv run export`: a trained run as files other tools load.

hf           a transformers GPT-2 folder: config.json + model.safetensors (gpt_core.interop)
             and the tokenizer as tokenizer.json (+ vocab.json/merges.txt for GPT-2's
             pattern), tokenizer_config.json and special_tokens_map.json
safetensors  our own state dict (model.safetensors, float32) + config.json (our GPTConfig)
tiktoken     tokenizer.tiktoken (the rank file) + tiktoken.json (name, pattern, special
             tokens): everything tiktoken.Encoding(...) needs

The folder is written beside --out under a temporary name and renamed into place when
complete (gpt_tokenizers.atomic), so a refused variant or an error leaves nothing half
written; an existing non-empty --out is refused unless overwrite is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from gpt_core.interop import save_gpt2
from gpt_tokenizers import BPETokenizer
from gpt_tokenizers.atomic import atomic_path
from gpt_tokenizers.hf_files import write_hf_files
from gpt_tokenizers.interchange import write_tiktoken_files
from gpt_train.runs import LoadedRun, load_run

from gpt_eval.errors import EvalError

Format = Literal["hf", "safetensors", "tiktoken"]
FORMATS: tuple[Format, ...] = ("hf", "safetensors", "tiktoken")


def _bpe(run: LoadedRun, fmt: str) -> BPETokenizer:
    tok = run.tokenizer
    if not isinstance(tok, BPETokenizer):
        kind = type(tok).__name__.removesuffix("Tokenizer").lower()
        raise EvalError(
            f"--format {fmt} needs a byte-level BPE tokenizer; this run's is a {kind} "
            "tokenizer (train with data.tokenizer: bpe, or use --format safetensors)"
        )
    return tok


def _write_hf(run: LoadedRun, out: Path) -> None:
    tok = _bpe(run, "hf")
    save_gpt2(run.model, out)
    write_hf_files(tok, out)
    config = json.loads((out / "config.json").read_text())
    eot = tok.eot_id
    config.update(bos_token_id=eot, eos_token_id=eot)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    named = {"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"} if eot is not None else {}
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": run.model.config.max_seq_len,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
        **named,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps(named, indent=2) + "\n")


def _write_safetensors(run: LoadedRun, out: Path) -> None:
    from safetensors.torch import save_model

    out.mkdir()
    model = run.model.float()  # one dtype, whatever the run trained in
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2) + "\n")


def _write_tiktoken(run: LoadedRun, out: Path) -> None:
    write_tiktoken_files(_bpe(run, "tiktoken"), out)


def export_run(
    run_dir: str | Path,
    out: str | Path,
    fmt: Format = "hf",
    checkpoint: str = "latest",
    overwrite: bool = False,
) -> Path:
    """Write checkpoint `checkpoint` of `run_dir` to folder `out` in format `fmt`; returns it."""
    if fmt not in FORMATS:
        raise EvalError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise EvalError(f"--out {target} is a file; give a folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise EvalError(f"--out {target} is not empty; pass --overwrite to replace it")
    run = load_run(run_dir, checkpoint=checkpoint, device="cpu")
    writer = {"hf": _write_hf, "safetensors": _write_safetensors, "tiktoken": _write_tiktoken}
    with atomic_path(target) as tmp:
        writer[fmt](run, tmp)
    return target
