"""The tokenizer benchmark's plumbing: the documents peers are fed and the scaling corpora."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from gpt_eval.bench_tokenizer import FORMS, TRAIN_MIN_SECONDS, _keep_best, train_in_turns
from gpt_eval.bench_tokenizer_scaling import build_scaling_corpus
from gpt_eval.bench_tokenizer_worker import GPT4, documents
from gpt_eval.errors import EvalError
from gpt_tokenizers.patterns import resolve_pattern
from gpt_tokenizers.pretokenize import count_text

DATA = Path(__file__).resolve().parents[3] / "../shared/data"
SHAKESPEARE = DATA / "tinyshakespeare.txt"


def _text() -> str:
    if not SHAKESPEARE.is_file():
        pytest.skip("tinyshakespeare.txt not in ../shared/data")
    return SHAKESPEARE.read_text(encoding="utf-8")


def test_documents_are_line_aligned_and_cover_the_corpus() -> None:
    text = _text()
    docs = list(documents(text, 8192))
    assert "".join(docs) == text
    assert len(docs) > 100
    assert all(d.endswith("\n") for d in docs[:-1])
    assert all(len(d) >= 8192 for d in docs[:-1])


def test_documents_keep_every_chunk_of_the_whole_text() -> None:
    # Cutting into documents must not change what any trainer counts.
    text = _text()[:200_000]
    assert resolve_pattern("gpt4") == GPT4
    whole = count_text(text, GPT4)
    parts: Counter[str] = Counter()
    for d in documents(text, 1000):
        parts.update(count_text(d, GPT4))
    assert parts == whole


def test_scaling_corpus_holds_k_reshuffled_copies(tmp_path: Path) -> None:
    text = _text()
    lines = Counter(text.splitlines())
    sizes = []
    for k in (1, 2, 3):
        out = tmp_path / f"c{k}.txt"
        sizes.append(build_scaling_corpus(text, k, out, piece_chars=50_000))
        built = out.read_text(encoding="utf-8")
        assert Counter(built.splitlines()) == Counter({s: n * k for s, n in lines.items()})
    one = len(text.encode("utf-8"))
    assert sizes == [one, 2 * one, 3 * one]
    two = (tmp_path / "c2.txt").read_text(encoding="utf-8")
    assert two.startswith(text)
    assert two != text + text  # the second copy is reordered


def test_training_rounds_keep_the_best_time_and_the_highest_peak() -> None:
    rounds = [
        {"seconds": 2.0, "peak_mb": 30.0, "children_peak_mb": 0.0},
        {"seconds": 1.5, "peak_mb": 29.0, "children_peak_mb": 5.0},
        {"seconds": 1.8, "peak_mb": 31.0, "children_peak_mb": 1.0},
    ]
    kept = None
    for run in rounds:
        kept = _keep_best(kept, run)
    assert kept == {"seconds": 1.5, "peak_mb": 31.0, "children_peak_mb": 5.0}


def _fake_trainer(
    seconds: float, fails: str = ""
) -> tuple[list[str], Callable[[str, str], dict[str, float]]]:
    """A stand-in for the worker: (the calls made, a trainer whose `fails` peer raises)."""
    calls: list[str] = []

    def train(which: str, form: str) -> dict[str, float]:
        calls.append(f"{which}.{form}")
        if which == fails:
            raise EvalError(f"{which} trainer failed:\nno module named {which}")
        return {"seconds": seconds + 0.01 * len(calls), "peak_mb": 10.0, "children_peak_mb": 0.0}

    return calls, train


def test_training_runs_every_form_in_turns_and_longer_when_runs_are_short() -> None:
    every = [f"{w}.{f}" for w, fs in FORMS.items() for f in fs]
    calls, train = _fake_trainer(TRAIN_MIN_SECONDS)  # slow: the minimum rounds are enough
    forms = train_in_turns(train, 2)
    assert calls == every + every[::-1]  # in turns, every other round in reverse
    assert forms["ours"]["train_files"]["seconds"] == pytest.approx(TRAIN_MIN_SECONDS + 0.01)
    calls, train = _fake_trainer(0.001)  # fast: up to 3x the rounds
    train_in_turns(train, 2)
    assert calls == (every + every[::-1]) * 3


def test_a_failing_peer_is_skipped_but_ours_failing_is_an_error() -> None:
    calls, train = _fake_trainer(TRAIN_MIN_SECONDS, fails="rustbpe")
    forms = train_in_turns(train, 2)
    assert "rustbpe" not in forms
    assert sum(c.startswith("rustbpe.") for c in calls) == len(FORMS["rustbpe"])  # not retried
    _, train = _fake_trainer(1.0, fails="ours")
    with pytest.raises(EvalError, match="ours trainer failed"):
        train_in_turns(train, 2)
