"""Train the pure-Python GPT on a list of names, one name per document, and sample new ones.

A name becomes tokens as [BOS, n, a, m, e, BOS]: one special token marks both the start and
the end, so the model learns to begin a name after BOS and to emit BOS when the name is done.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gpt_micro.model import MicroConfig, MicroGPT
from gpt_micro.optim import Adam

DEFAULT_NAMES = Path(__file__).with_name("names.txt")


class MicroError(ValueError):
    """Bad input to gpt_micro (an empty names file, a bad setting)."""


def load_names(path: str | Path | None = None) -> list[str]:
    """One name per non-empty line of `path` (default: the list shipped with gpt_micro)."""
    file = Path(path) if path is not None else DEFAULT_NAMES
    names = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if not names:
        raise MicroError(f"{file}: no names found (expected one name per line)")
    return names


@dataclass(frozen=True)
class CharVocab:
    """Characters <-> ids; the last id is BOS, the start/end-of-name token."""

    chars: str

    @classmethod
    def from_names(cls, names: Sequence[str]) -> CharVocab:
        return cls("".join(sorted(set("".join(names)))))

    @property
    def bos(self) -> int:
        return len(self.chars)

    @property
    def size(self) -> int:
        return len(self.chars) + 1

    def encode(self, name: str) -> list[int]:
        """[BOS, ids of the characters..., BOS]."""
        unknown = sorted(set(name) - set(self.chars))
        if unknown:
            raise MicroError(f"characters {unknown!r} in {name!r} are not in the vocabulary")
        return [self.bos, *(self.chars.index(ch) for ch in name), self.bos]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i] for i in ids if i != self.bos)


def make_example(tokens: Sequence[int], block_size: int) -> tuple[list[int], list[int]]:
    """Inputs and next-token targets, cut to the context length: the model at position t
    sees tokens[:t+1] and must predict tokens[t+1]."""
    tokens = list(tokens)[: block_size + 1]
    return tokens[:-1], tokens[1:]


def train(
    model: MicroGPT,
    vocab: CharVocab,
    names: Sequence[str],
    steps: int,
    lr: float = 1e-2,
    batch_size: int = 1,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Adam on `batch_size` random names per step, the rate falling linearly to 0.

    Returns the loss of every step; `on_step(step, loss)` is called after each one.
    """
    if steps < 1 or batch_size < 1:
        raise MicroError(f"steps and batch_size must be at least 1, got {steps}, {batch_size}")
    rng = random.Random(seed)
    optimizer = Adam(model.parameters(), lr=lr)
    losses: list[float] = []
    for step in range(steps):
        batch = [
            make_example(vocab.encode(rng.choice(names)), model.config.block_size)
            for _ in range(batch_size)
        ]
        loss = model.loss([x for x, _ in batch], [y for _, y in batch])  # forward
        optimizer.zero_grad()
        loss.backward()  # every parameter's .grad = d(loss)/d(parameter)
        optimizer.step(lr=lr * (1.0 - step / steps))  # linear decay
        losses.append(loss.data)
        if on_step is not None:
            on_step(step, loss.data)
    return losses


def sample(
    model: MicroGPT,
    vocab: CharVocab,
    num_samples: int,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """Draw `num_samples` names: start at BOS, sample until BOS comes out again."""
    if temperature <= 0:
        raise MicroError(f"temperature must be positive, got {temperature}")
    rng = random.Random(seed)
    return [
        vocab.decode(list(model.generate(vocab.bos, vocab.bos, rng, temperature)))
        for _ in range(num_samples)
    ]


def build_model(vocab: CharVocab, seed: int = 0, **overrides: int | float | bool) -> MicroGPT:
    """A MicroGPT sized for names; keyword arguments override MicroConfig fields."""
    try:
        config = MicroConfig(vocab_size=vocab.size, **overrides)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise MicroError(f"bad model setting: {exc}") from None
    return MicroGPT(config, seed=seed)
