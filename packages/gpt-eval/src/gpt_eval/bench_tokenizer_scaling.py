"""`bench tokenizer --scaling`: training time and peak memory of ours and HF as the corpus grows.

Size k holds k copies of gutenberg_40, each cut into ~1 MB line-aligned pieces (about a
book each) and shuffled with its own seed, so the text differs in order from copy to copy
while the set of unique chunks stays that of one copy: time should grow with bytes and
memory with unique chunks, not bytes.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt_eval.bench_tokenizer_worker import PIECE_CHARS, documents
from gpt_eval.errors import EvalError

SCALING_CORPUS = "gutenberg_40.txt"
SCALING_VOCAB = 16384


def build_scaling_corpus(text: str, copies: int, out: Path, piece_chars: int = PIECE_CHARS) -> int:
    """Write `copies` reshuffled copies of `text` to `out`; return its size in bytes."""
    pieces = list(documents(text, piece_chars))
    with open(out, "w", encoding="utf-8") as f:
        for k in range(copies):
            order = list(range(len(pieces)))
            if k:  # the first copy is the corpus as it is
                random.Random(k).shuffle(order)
            for i in order:
                f.write(pieces[i])
    return out.stat().st_size


def _copies(spec: str) -> list[int]:
    try:
        out = [int(c) for c in spec.split(",")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise EvalError(f"--copies {spec!r}: expected positive integers, e.g. 1,2,4")
    return out


def run_scaling(
    args: argparse.Namespace, train: Callable[[str, str, Path, int, Path], dict[str, float]]
) -> dict[str, Any]:
    """Train ours (train_files) and HF (documents) on each size; print and return the table."""
    copies = _copies(args.copies)
    path = args.data_dir / SCALING_CORPUS
    if not path.is_file():
        raise EvalError(f"corpus not found: {path} (see --data-dir)")
    text = path.read_text(encoding="utf-8")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-tokenizer-scaling-") as tmp:
        for k in copies:
            corpus = Path(tmp) / f"scaling{k}.txt"
            size = build_scaling_corpus(text, k, corpus)
            print(f"{k} cop{'y' if k == 1 else 'ies'}: {size / 1e6:.1f} MB", flush=True)
            for which, form in (("ours", "train_files"), ("hf", "docs")):
                result = train(which, form, corpus, SCALING_VOCAB, Path(tmp) / f"out.{which}")
                rows.append({"copies": k, "mb": size / 1e6, "trainer": which, **result})
            corpus.unlink()
    print(f"\n{'MB':>7} {'trainer':<8}{'time s':>8}{'s per MB':>10}{'peak MB':>9}")
    for r in rows:
        peak = r["peak_mb"] + r["children_peak_mb"]
        print(
            f"{r['mb']:>7.1f} {r['trainer']:<8}{r['seconds']:>8.2f}"
            f"{r['seconds'] / r['mb']:>10.3f}{peak:>9.0f}"
        )
    print(f"(vocab {SCALING_VOCAB}; ours: train_files; hf: ~8 KB documents in batches of 1000)")
    return {"scaling": rows}
