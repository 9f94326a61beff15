"""Showing generation as it happens: the sampling loop behind `uv run sample`, incremental
decoding, stop text, the top-k display.

Byte-level BPE tokens can end in the middle of a UTF-8 character, so a token cannot be
decoded on its own. TextStream decodes all the ids so far and hands out only the new,
settled suffix: it holds back a trailing replacement character (an unfinished character)
and any tail that could still grow into a stop string.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpt_eval.errors import EvalError

if TYPE_CHECKING:
    from gpt_core import SamplingConfig
    from gpt_tokenizers.protocol import Tokenizer
    from gpt_train.runs import LoadedRun

REPLACEMENT = "\ufffd"  # what decoders emit for bytes that are not (yet) a whole character


@dataclass
class TextStream:
    """Turn a stream of token ids into printable text pieces, stopping at a stop string.

    push(id) returns the text that is safe to print now (maybe ""); finish() returns the
    rest. After a stop string appears, `stopped` is True and the text ends before it.
    """

    decode: Callable[[Sequence[int]], str]
    stops: Sequence[str] = ()
    ids: list[int] = field(default_factory=list)
    emitted: int = 0  # characters of the decoded text already handed out
    stopped: bool = False
    text: str = ""  # the final text once finished (or stopped)

    def _settled(self, text: str) -> int:
        """How many leading characters of `text` can no longer change or start a stop."""
        end = len(text)
        while end > 0 and text[end - 1] == REPLACEMENT:
            end -= 1
        hold = 0  # the longest tail that is a proper prefix of some stop string
        for stop in self.stops:
            for n in range(min(len(stop) - 1, end), 0, -1):
                if text[end - n : end] == stop[:n]:
                    hold = max(hold, n)
                    break
        return max(end - hold, self.emitted)

    def push(self, token_id: int) -> str:
        """Add one token; return the newly printable text."""
        if self.stopped:
            return ""
        self.ids.append(token_id)
        text = self.decode(self.ids)
        hits = [text.find(s) for s in self.stops if s]
        hits = [h for h in hits if h >= 0]
        if hits:
            cut = min(hits)
            self.stopped = True
            self.text = text[:cut]
            piece = text[self.emitted : cut]
            self.emitted = max(self.emitted, cut)
            return piece
        end = self._settled(text)
        piece = text[self.emitted : end]
        self.emitted = end
        return piece

    def finish(self) -> str:
        """Return whatever is still held back (the stream is over)."""
        if self.stopped:
            return ""
        self.text = self.decode(self.ids)
        piece = self.text[self.emitted :]
        self.emitted = len(self.text)
        return piece


def top_candidates(
    probs: Any, decode: Callable[[Sequence[int]], str], k: int = 5
) -> list[tuple[int, str, float]]:
    """The k most likely next tokens of a probability vector (V,): (id, text, probability)."""
    import torch

    p = probs.detach().float().reshape(-1)
    values, ids = torch.topk(p, min(k, p.numel()))
    return [
        (int(i), decode([int(i)]), float(v))
        for v, i in zip(values.tolist(), ids.tolist(), strict=True)
        if v > 0
    ]


def show_token(text: str) -> str:
    """A token's text made visible on one line: quotes, escaped newlines and tabs."""
    return repr(text)


def format_step(
    step: int,
    chosen: tuple[int, str, float],
    candidates: Sequence[tuple[int, str, float]],
    tempered: Sequence[float] | None = None,
) -> str:
    """One --verbose line: the chosen token (text, id, probability), then the top candidates
    with their probabilities; with `tempered`, each candidate's probability becomes
    "p at temperature 1 -> p as sampled" (after temperature and top-k/top-p)."""
    after = [f"->{p:.3f}" for p in tempered] if tempered is not None else [""] * len(candidates)
    options = "  ".join(
        f"{'*' if cid == chosen[0] else ' '}{show_token(text)} {p:.3f}{a}"
        for (cid, text, p), a in zip(candidates, after, strict=True)
    )
    pick = f"{show_token(chosen[1]):>12} (id {chosen[0]})"
    return f"step {step:4d}  chose {pick} p={chosen[2]:.3f}  | {options}"


def describe_shapes(model: Any, idx: Any, sampling: SamplingConfig) -> str:
    """The --verbose header: the shapes from the prompt to one sampled token, measured on
    the model (one extra forward pass over the prompt), and what the columns below show."""
    import torch
    from gpt_train.explain import shape

    idx = idx[:, -model.config.max_seq_len :]  # what the model sees (see gpt_core.generation)
    with torch.inference_mode():
        logits = model(idx)[0]
    last = logits[:, -1]
    t = sampling.temperature
    pick = "argmax (greedy)" if t == 0 else f"softmax(logits / {t:g}) -> probs {shape(last)}"
    lines = [
        f"shapes: prompt {shape(idx)} = (1, T) -> logits {shape(logits)} = (1, T, V) -> last "
        f"position logits[:, -1] {shape(last)} = (1, V) -> {pick} -> one token (1,)",
        "        later steps feed only the new token (1, 1): the KV cache holds the rest",
    ]
    if t not in (0.0, 1.0) or sampling.top_k or sampling.top_p:
        lines.append(
            f"top 5 below: probability at temperature 1 -> as sampled (temperature {t:g}, "
            f"top_k {sampling.top_k}, top_p {sampling.top_p})"
        )
    return "\n".join(lines)


def prompt_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """Prompt ids; an empty prompt starts from the end-of-text token (a document start)."""
    ids: list[int] = tokenizer.encode(prompt) if prompt else []
    if not ids:
        if tokenizer.eot_id is None:
            raise EvalError(
                "an empty prompt needs a tokenizer with an end-of-text token; give --prompt TEXT"
            )
        ids = [tokenizer.eot_id]
    return ids


def with_eot_stop(sampling: SamplingConfig, tokenizer: Tokenizer) -> SamplingConfig:
    """The sampling settings with the tokenizer's end-of-text id among the stop ids (a
    sample ends where a document would)."""
    eot = tokenizer.eot_id
    if eot is None or eot in sampling.stop_ids:
        return sampling
    return dataclasses.replace(sampling, stop_ids=(*sampling.stop_ids, eot))


def sample_text(
    run: LoadedRun,
    ids: Sequence[int],
    sampling: SamplingConfig,
    write: Callable[[str], object],
    stops: Sequence[str] = (),
    verbose: bool = False,
) -> str:
    """Generate one sample after the prompt ids and hand the output to `write` as it comes:
    the text piece by piece, or with verbose a line per step (the pick and the 5 likeliest
    tokens) and then the whole text. The end-of-text token and the stop strings end the
    sample (neither is part of it). Returns the sample's text, without the prompt."""
    import torch
    from gpt_core import stream

    tok = run.tokenizer
    eot = tok.eot_id
    sampling = with_eot_stop(sampling, tok)
    device = next(run.model.parameters()).device
    idx = torch.tensor([list(ids)], dtype=torch.long, device=device)
    text = TextStream(tok.decode, stops=[s for s in stops if s])
    compare = sampling.temperature not in (0.0, 1.0) or bool(sampling.top_k or sampling.top_p)
    if verbose:
        write(describe_shapes(run.model, idx, sampling) + "\n")
    for step in stream(run.model, idx, sampling, return_probs=verbose):
        token = int(step.tokens[0])
        if step.probs is not None and step.logits is not None:
            probs, tempered = step.probs[0], None
            if compare:  # rank by the model's own distribution, show what sampling made of it
                probs = torch.softmax(step.logits[0].float(), dim=-1)
            candidates = top_candidates(probs, tok.decode, k=5)
            if compare:
                tempered = [float(step.probs[0, cid]) for cid, _, _ in candidates]
            chosen = (token, tok.decode([token]), float(step.probs[0, token]))
            write(format_step(step.index, chosen, candidates, tempered) + "\n")
        if token == eot:
            break
        piece = text.push(token)
        if piece and not verbose:
            write(piece)
        if text.stopped:
            break
    rest = text.finish()
    write(f"--- text ---\n{text.text}\n" if verbose else rest + "\n")
    return text.text
