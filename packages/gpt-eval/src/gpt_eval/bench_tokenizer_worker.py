"""One trainer run for `bench tokenizer`, in a fresh interpreter (run as a script by path).

It imports only what its trainer needs, so the peak memory it reports is that trainer's own.
argv: which (ours | hf | rustbpe), form, train file, vocab size, output path. Forms:
`train_files` (ours: the file path), `docs` (a list of ~8 KB line-aligned documents, the
input HF documents for `train_from_iterator`, fed in batches of `BATCH`; rustbpe gets the
same list) and `pieces` (1 MB pieces, the form this benchmark used before issue 16).
"""

from __future__ import annotations

import json
import re
import resource
import sys
import time
from collections.abc import Iterator

GPT4 = (
    r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"
    r"| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"
)
# The safe line breaks of gpt_tokenizers.pretokenize: no GPT-4 chunk crosses one, so every
# trainer sees the same chunks whatever the document size.
CUT = re.compile(r"[!-~]\n(?=[!-.0-~])")
DOC_CHARS = 8192
PIECE_CHARS = 1_000_000
BATCH = 1000  # documents per batch, as in HF's train_from_iterator examples


def documents(text: str, size: int = DOC_CHARS) -> Iterator[str]:
    """Line-aligned pieces of `text` of about `size` characters that join back to it."""
    start = 0
    while len(text) - start > size:
        m = CUT.search(text, start + size)
        if m is None:
            break
        yield text[start : m.end()]
        start = m.end()
    yield text[start:]


def _batches(docs: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(docs), BATCH):
        yield docs[i : i + BATCH]


def _train(which: str, form: str, path: str, vocab: int, out: str) -> float:
    if which == "ours":
        from gpt_tokenizers import BPETokenizer

        t0 = time.perf_counter()
        tok = BPETokenizer.train_files([path], vocab_size=vocab)
        seconds = time.perf_counter() - t0
        tok.save(out)
        return seconds
    t0 = time.perf_counter()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    docs = list(documents(text, DOC_CHARS if form == "docs" else PIECE_CHARS))
    del text
    if which == "hf":
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

        hf = Tokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(GPT4), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
        trainer = trainers.BpeTrainer(
            vocab_size=vocab,
            show_progress=False,
            special_tokens=[],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        source = _batches(docs) if form == "docs" else iter(docs)
        hf.train_from_iterator(source, trainer=trainer, length=len(docs))
        seconds = time.perf_counter() - t0
        hf.decoder = decoders.ByteLevel()
        hf.save(out)
        return seconds
    import base64

    import rustbpe

    rb = rustbpe.Tokenizer()
    rb.train_from_iterator(iter(docs), vocab, pattern=GPT4)
    seconds = time.perf_counter() - t0
    with open(out, "w") as f:
        for token, rank in sorted(rb.get_mergeable_ranks(), key=lambda x: x[1]):
            f.write(base64.b64encode(bytes(token)).decode() + " " + str(rank) + "\n")
    return seconds


def _peak_mb() -> tuple[float, float]:
    # Linux carries the forking parent's high-water mark into ru_maxrss across exec, so the
    # bench process's own size would leak in; VmHWM belongs to this process image alone.
    try:
        with open("/proc/self/status") as f:
            own = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


if __name__ == "__main__":
    which, form, path, vocab, out = sys.argv[1:6]
    seconds = _train(which, form, path, int(vocab), out)
    own, children = _peak_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": own, "children_peak_mb": children}))
