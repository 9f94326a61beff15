"""A tiny GPT built from scalar `Value`s: embeddings, RMSNorm, causal multi-head attention, MLP.

The architecture is the one `gpt_core.GPT` builds with norm="rmsnorm", mlp="relu", bias=False,
pos_encoding="learned": the test in tests/test_micro_vs_torch.py loads the same weights into both
and checks that the loss and every gradient agree.

The model reads one token at a time. Each layer appends that token's key and value to a cache and
attends over everything cached so far, so attention is causal by construction (position t simply
cannot see keys that do not exist yet) and the cache is the same KV cache fast inference uses.

Weights are plain lists: a matrix is `list[list[Value]]` with shape (out, in), as in torch's
nn.Linear, so `linear(x, W)[i] = sum_j W[i][j] * x[j]`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gpt_micro.engine import Value, dot, vsum

Vector = list[Value]
Matrix = list[list[Value]]
KVCache = list[tuple[list[Vector], list[Vector]]]  # per layer: (keys so far, values so far)


@dataclass(frozen=True)
class MicroConfig:
    """The shape of the model. Defaults are small enough to train on names in a minute."""

    vocab_size: int
    block_size: int = 16  # longest sequence (number of learned positions)
    n_embd: int = 16  # d_model: width of the residual stream
    n_layer: int = 1
    n_head: int = 4
    mlp_hidden: int | None = None  # None -> 4 * n_embd
    tie_weights: bool = False  # reuse the token embedding as the output head
    norm_eps: float = 1e-5  # added to mean(x^2) inside RMSNorm
    norm_weight: bool = True  # RMSNorm has a learned per-channel gain
    init_std: float = 0.08

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        for name in ("vocab_size", "block_size", "n_embd", "n_layer", "n_head"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @property
    def hidden(self) -> int:
        return self.mlp_hidden if self.mlp_hidden is not None else 4 * self.n_embd


# --- the building blocks, as plain functions on lists of Values ---


def linear(x: Vector, w: Matrix) -> Vector:
    """y = W x with W of shape (out, in): one dot product per output."""
    return [dot(row, x) for row in w]


def rmsnorm(x: Vector, eps: float, gain: Vector | None) -> Vector:
    """Scale x to unit root-mean-square, then multiply by a learned gain (if any)."""
    mean_square = vsum(xi * xi for xi in x) / len(x)
    scale = (mean_square + eps) ** -0.5
    if gain is None:
        return [xi * scale for xi in x]
    return [xi * scale * g for xi, g in zip(x, gain, strict=True)]


def softmax(logits: Vector) -> Vector:
    """exp(l_i) / sum_j exp(l_j), shifted by the max for numerical safety (the shift is a
    constant, so it changes no gradient)."""
    m = max(v.data for v in logits)
    exps = [(v - m).exp() for v in logits]
    total = vsum(exps)
    return [e / total for e in exps]


class MicroGPT:
    """The model: its weights in `params` (name -> matrix) and a forward pass over tokens."""

    def __init__(self, config: MicroConfig, seed: int = 0) -> None:
        self.config = config
        c = config
        rng = random.Random(seed)

        def matrix(rows: int, cols: int) -> Matrix:
            return [[Value(rng.gauss(0.0, c.init_std)) for _ in range(cols)] for _ in range(rows)]

        def ones(n: int) -> Matrix:  # a gain vector, stored as a 1-row matrix
            return [[Value(1.0) for _ in range(n)]]

        p: dict[str, Matrix] = {}
        p["wte"] = matrix(c.vocab_size, c.n_embd)  # token embedding (vocab, d)
        p["wpe"] = matrix(c.block_size, c.n_embd)  # position embedding (block, d)
        for i in range(c.n_layer):
            if c.norm_weight:
                p[f"h{i}.norm1"] = ones(c.n_embd)
            p[f"h{i}.wq"] = matrix(c.n_embd, c.n_embd)
            p[f"h{i}.wk"] = matrix(c.n_embd, c.n_embd)
            p[f"h{i}.wv"] = matrix(c.n_embd, c.n_embd)
            p[f"h{i}.wo"] = matrix(c.n_embd, c.n_embd)
            if c.norm_weight:
                p[f"h{i}.norm2"] = ones(c.n_embd)
            p[f"h{i}.fc"] = matrix(c.hidden, c.n_embd)  # d -> hidden
            p[f"h{i}.proj"] = matrix(c.n_embd, c.hidden)  # hidden -> d
        if c.norm_weight:
            p["norm_f"] = ones(c.n_embd)
        if not c.tie_weights:
            p["lm_head"] = matrix(c.vocab_size, c.n_embd)
        self.params = p

    def parameters(self) -> list[Value]:
        """Every trainable scalar, in a fixed order."""
        return [v for m in self.params.values() for row in m for v in row]

    def num_parameters(self) -> int:
        return len(self.parameters())

    def _gain(self, name: str) -> Vector | None:
        return self.params[name][0] if name in self.params else None

    def new_cache(self) -> KVCache:
        return [([], []) for _ in range(self.config.n_layer)]

    def step(self, token: int, pos: int, cache: KVCache) -> Vector:
        """Read one token at position `pos`; return the logits (vocab,) for the next token."""
        c = self.config
        if pos >= c.block_size:
            raise ValueError(f"position {pos} is past block_size={c.block_size}")
        head_dim = c.n_embd // c.n_head
        # Embedding: what the token is plus where it is. x: (d,)
        x = [t + q for t, q in zip(self.params["wte"][token], self.params["wpe"][pos], strict=True)]
        for i, (keys, values) in enumerate(cache):
            # Attention sub-block: x = x + W_o . MultiHead(RMSNorm(x))
            h = rmsnorm(x, c.norm_eps, self._gain(f"h{i}.norm1"))
            q = linear(h, self.params[f"h{i}.wq"])  # (d,)
            keys.append(linear(h, self.params[f"h{i}.wk"]))  # cache grows to (pos+1, d)
            values.append(linear(h, self.params[f"h{i}.wv"]))
            heads: Vector = []
            for hd in range(c.n_head):
                s = slice(hd * head_dim, (hd + 1) * head_dim)  # this head's channels
                scores = [dot(q[s], k[s]) / math.sqrt(head_dim) for k in keys]  # (pos+1,)
                weights = softmax(scores)
                heads += [  # weighted average of the cached values, channel by channel
                    vsum(w * v[j] for w, v in zip(weights, values, strict=True))
                    for j in range(s.start, s.stop)
                ]
            x = [a + b for a, b in zip(x, linear(heads, self.params[f"h{i}.wo"]), strict=True)]
            # MLP sub-block: x = x + W_proj . relu(W_fc . RMSNorm(x))
            h = rmsnorm(x, c.norm_eps, self._gain(f"h{i}.norm2"))
            h = [a.relu() for a in linear(h, self.params[f"h{i}.fc"])]  # (hidden,)
            x = [a + b for a, b in zip(x, linear(h, self.params[f"h{i}.proj"]), strict=True)]
        x = rmsnorm(x, c.norm_eps, self._gain("norm_f"))
        head = self.params["wte"] if c.tie_weights else self.params["lm_head"]
        return linear(x, head)  # logits (vocab,)

    def forward(self, tokens: Sequence[int]) -> list[Vector]:
        """Logits for every position of one sequence: (T, vocab)."""
        cache = self.new_cache()
        return [self.step(tok, pos, cache) for pos, tok in enumerate(tokens)]

    def loss(self, inputs: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]) -> Value:
        """Mean cross-entropy -log p(target) over every position of a batch of sequences.

        Targets of -1 are ignored, as in gpt_core.GPT.
        """
        losses: list[Value] = []
        for seq, tgt in zip(inputs, targets, strict=True):
            for logits, target in zip(self.forward(seq), tgt, strict=True):
                if target != -1:
                    losses.append(-softmax(logits)[target].log())
        if not losses:
            raise ValueError("every target is -1: there is nothing to compute a loss on")
        return vsum(losses) / len(losses)

    def generate(
        self,
        start: int,
        stop: int,
        rng: random.Random,
        temperature: float = 1.0,
        max_len: int | None = None,
    ) -> Iterator[int]:
        """Sample tokens after `start` until `stop` is drawn or the context is full."""
        limit = self.config.block_size if max_len is None else min(max_len, self.config.block_size)
        cache = self.new_cache()
        token = start
        for pos in range(limit):
            logits = self.step(token, pos, cache)
            # Only the numbers matter here, so sample from plain floats.
            probs = [p.data for p in softmax([lg / temperature for lg in logits])]
            token = rng.choices(range(len(probs)), weights=probs)[0]
            if token == stop:
                return
            yield token
