"""Loss, perplexity and bits per byte of a model on a text or a prepared token split.

The tokens are cut into non-overlapping windows of max_seq_len + 1: each window predicts its
last max_seq_len tokens from the ones before, so every token but the first is scored exactly
once. Bits per byte divides the total loss (in bits) by the UTF-8 bytes of the scored tokens,
which makes models with different tokenizers comparable.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gpt_tokenizers import CharTokenizer, TokenizerError
from tqdm import tqdm

from gpt_eval.errors import EvalError


@dataclass(frozen=True)
class EvalResult:
    """Evaluation figures; loss is in nats per token."""

    loss: float
    perplexity: float
    bits_per_byte: float
    tokens: int  # tokens scored (predicted)
    bytes: int  # UTF-8 bytes of the scored tokens
    windows: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def windows(num_tokens: int, seq_len: int) -> list[tuple[int, int]]:
    """(start, end) of each window over ids[0:num_tokens]; consecutive windows share one id.

    A window's inputs are ids[start:end-1] and its targets ids[start+1:end].
    """
    if num_tokens < 2:
        return []
    return [(s, min(s + seq_len + 1, num_tokens)) for s in range(0, num_tokens - 1, seq_len)]


def total_loss(
    model: Any,
    ids: np.ndarray | Sequence[int],
    batch_size: int = 8,
    progress: bool | None = False,
) -> tuple[float, int, int]:
    """Sum of the next-token cross entropy (nats) over all windows: (sum, tokens, windows).

    `progress`: a bar of windows on stderr; None shows it only when stderr is a terminal.
    """
    import torch

    data = np.asarray(ids, dtype=np.int64)
    seq_len = int(model.config.max_seq_len)
    spans = windows(len(data), seq_len)
    device = next(model.parameters()).device
    nats = 0.0
    scored = 0
    was_training = model.training
    model.eval()
    # tqdm's disable=None means: only when stderr is a terminal.
    disable = None if progress is None else not progress
    try:
        with (
            torch.inference_mode(),
            tqdm(total=len(spans), desc="scoring windows", unit="win", disable=disable) as bar,
        ):
            for b in range(0, len(spans), batch_size):
                batch = spans[b : b + batch_size]
                width = max(e - s - 1 for s, e in batch)
                x = torch.zeros(len(batch), width, dtype=torch.long)
                y = torch.full((len(batch), width), -1, dtype=torch.long)  # -1: padding
                for row, (s, e) in enumerate(batch):
                    x[row, : e - s - 1] = torch.from_numpy(data[s : e - 1])
                    y[row, : e - s - 1] = torch.from_numpy(data[s + 1 : e])
                x, y = x.to(device), y.to(device)
                # the mean over the counted targets, never all the (B, T, V) logits at once
                _, mean = model(x, y, return_logits=False)
                counted = int((y >= 0).sum().item())  # every window scores at least one
                nats += float(mean) * counted
                scored += counted
                bar.update(len(batch))
    finally:
        model.train(was_training)
    return nats, scored, len(spans)


def evaluate_ids(
    model: Any,
    ids: np.ndarray | Sequence[int],
    decode: Callable[[Sequence[int]], str],
    batch_size: int = 8,
    progress: bool | None = False,
) -> EvalResult:
    """Evaluate on token ids; `decode` turns the scored ids back into text to count bytes."""
    data = np.asarray(ids, dtype=np.int64)
    if len(data) < 2:
        raise EvalError(f"need at least 2 tokens to evaluate, got {len(data)}")
    nats, scored, count = total_loss(model, data, batch_size, progress)
    num_bytes = len(decode(data[1:].tolist()).encode("utf-8"))
    loss = nats / scored
    return EvalResult(
        loss=loss,
        perplexity=math.exp(min(loss, 700.0)),  # avoid overflow on an untrained model
        bits_per_byte=nats / math.log(2) / max(num_bytes, 1),
        tokens=scored,
        bytes=num_bytes,
        windows=count,
    )


def read_text_tokens(tokenizer: Any, path: str | Path, max_tokens: int | None = None) -> list[int]:
    """Tokenize a UTF-8 text file, with an EvalError naming it when it is missing or empty."""
    return read_text(tokenizer, path, max_tokens)[0]


def read_text(
    tokenizer: Any, path: str | Path, max_tokens: int | None = None
) -> tuple[list[int], Counter[str]]:
    """The file's token ids, and the characters left out because a char vocabulary lacks them.

    A character-level model cannot score a character it never saw, but one stray symbol
    should not make a whole file unusable: such characters are dropped and counted, so the
    caller can say how many were skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"input file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EvalError(f"{path} is not UTF-8 text: {exc}") from None
    skipped: Counter[str] = Counter()
    if isinstance(tokenizer, CharTokenizer):
        unknown = {c for c in set(text) if not _encodes(tokenizer, c)}
        if unknown:
            skipped = Counter(c for c in text if c in unknown)
            text = "".join(c for c in text if c not in unknown)
    ids: list[int] = tokenizer.encode(text)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if len(ids) < 2:
        raise EvalError(f"{path} holds {len(ids)} token(s); at least 2 are needed to evaluate")
    return ids, skipped


def _encodes(tokenizer: CharTokenizer, char: str) -> bool:
    try:
        tokenizer.encode(char)
    except TokenizerError:
        return False
    return True


def read_split_tokens(
    data_dir: str | Path, split: str, max_tokens: int | None = None
) -> np.ndarray:
    """The token ids of a prepared split (<data_dir>/<split>.bin, dtype from meta.json)."""
    data_dir = Path(data_dir)
    path = data_dir / f"{split}.bin"
    if not path.is_file():
        raise EvalError(f"prepared split not found: {path} (prepare the data or pass --input)")
    dtype = "uint16"
    meta = data_dir / "meta.json"
    if meta.is_file():
        dtype = str(json.loads(meta.read_text()).get("dtype", dtype))
    if dtype not in ("uint16", "uint32"):
        raise EvalError(f"{meta}: dtype {dtype!r} is not uint16 or uint32")
    tokens: np.ndarray = np.memmap(path, dtype=np.dtype(dtype), mode="r")
    if max_tokens is not None:
        tokens = tokens[:max_tokens]
    if len(tokens) < 2:
        raise EvalError(f"{path} holds {len(tokens)} token(s); at least 2 are needed to evaluate")
    return np.asarray(tokens, dtype=np.int64)


def evaluate_run(
    run_dir: str | Path,
    checkpoint: str = "latest",
    input_path: str | Path | None = None,
    split: str | None = None,
    data_dir: str | Path | None = None,
    max_tokens: int | None = None,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool | None = None,
) -> dict[str, Any]:
    """Score a run's checkpoint on a text file or a prepared split (exactly one of them).

    Returns the report `uv run evaluate` prints and writes: the `EvalResult` figures plus
    run, checkpoint, step, input and seq_len. `data_dir` defaults to the run's data folder.
    """
    from gpt_train.runs import load_run

    if (input_path is None) == (split is None):
        raise EvalError("evaluate needs exactly one of a text file or a prepared split")
    if max_tokens is not None and max_tokens < 2:
        raise EvalError(f"--max-tokens must be at least 2, got {max_tokens}")
    if batch_size < 1:
        raise EvalError(f"--batch-size must be at least 1, got {batch_size}")
    run = load_run(run_dir, checkpoint=checkpoint, device=device)
    ids: Sequence[int] | np.ndarray
    skipped: Counter[str] = Counter()
    if split is None:
        source = str(input_path)
        ids, skipped = read_text(run.tokenizer, source, max_tokens)
    else:
        folder = Path(data_dir) if data_dir is not None else Path(run.config.data.dir)
        source = f"{folder}/{split}.bin"
        ids = read_split_tokens(folder, split, max_tokens)
    result = evaluate_ids(run.model, ids, run.tokenizer.decode, batch_size, progress)
    return {
        "run": str(run_dir),
        "checkpoint": str(run.checkpoint_path),
        "step": run.step,
        "input": source,
        "seq_len": run.model.config.max_seq_len,
        "skipped_chars": sum(skipped.values()),
        "skipped_distinct": "".join(sorted(skipped)),
        **result.to_dict(),
    }
