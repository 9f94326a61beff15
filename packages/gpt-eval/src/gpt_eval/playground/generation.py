"""One generation as a series of events for the page, made on a worker thread.

The tokens come from gpt_core's typed stream (with each step's probabilities); the text the
page prints comes from TextStream, and the token view from token_pieces, as in `sample` and
`tokenizer show`. A pool of slots caps how many generations run at once: a request that
finds none free is refused at once (the app answers 429) instead of waiting in a queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gpt_eval.sampling import TextStream, top_candidates, with_eot_stop

if TYPE_CHECKING:
    from gpt_core import SamplingConfig
    from gpt_tokenizers import Tokenizer
    from gpt_train.runs import LoadedRun

REPLACEMENT = "\ufffd"
TOP_K = 5  # candidates shown for each generated token
BUFFERED_EVENTS = 64  # a client that stops reading holds its worker after this many


def pieces_json(tok: Tokenizer, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The token view of `ids`: each piece's text and ids, as `tokenizer show` cuts them."""
    from gpt_tokenizers.render import token_pieces

    return [{"text": p.text, "ids": list(p.ids)} for p in token_pieces(tok, ids)]


@dataclass
class _Pieces:
    """Cuts the generated ids into pieces as they come: a piece is handed out once the next
    token shows it is whole (a BPE token may end inside a UTF-8 character)."""

    tok: Tokenizer
    ids: list[int]
    done: int = 0  # ids already handed out in pieces

    def settled(self, final: bool = False) -> list[dict[str, Any]]:
        pending = pieces_json(self.tok, self.ids[self.done :])
        if not final and pending and pending[-1]["text"].endswith(REPLACEMENT):
            pending.pop()  # may still become a whole character
        self.done += sum(len(p["ids"]) for p in pending)
        return pending


def generation_events(
    run: LoadedRun, ids: Sequence[int], sampling: SamplingConfig
) -> Iterator[dict[str, Any]]:
    """start, then one token event per generated token, then done: what the page shows.

    The end-of-text token ends the sample (it is not part of the text, as in `sample`)."""
    import torch
    from gpt_core import stream

    tok = run.tokenizer
    yield {
        "event": "start",
        "prompt_ids": list(ids),
        "prompt_pieces": pieces_json(tok, ids),
        "context": run.model.config.max_seq_len,
    }
    sampling = with_eot_stop(sampling, tok)
    idx = torch.tensor([list(ids)], dtype=torch.long)
    text = TextStream(tok.decode)
    generated: list[int] = []
    pieces = _Pieces(tok, generated)
    reason = "length"
    for step in stream(run.model, idx, sampling, return_probs=True):
        token = int(step.tokens[0])
        assert step.probs is not None  # asked for with return_probs
        probs = step.probs[0]
        if token == tok.eot_id:
            reason = "end of text"
            break
        generated.append(token)
        yield {
            "event": "token",
            "index": step.index,
            "id": token,
            "p": float(probs[token]),
            "top": [
                {"id": i, "text": t, "p": p}
                for i, t, p in top_candidates(probs, tok.decode, k=TOP_K)
            ],
            "text": text.push(token),
            "pieces": pieces.settled(),
        }
    yield {
        "event": "done",
        "reason": reason,
        "text": text.finish(),
        "pieces": pieces.settled(final=True),
        "ids": list(ids) + generated,
    }


class Slots:
    """At most `limit` generations at once; take() never waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sem = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self.active = 0

    def take(self) -> bool:
        if not self._sem.acquire(blocking=False):
            return False
        with self._lock:
            self.active += 1
        return True

    def give(self) -> None:
        with self._lock:
            self.active -= 1
        self._sem.release()


class Generation:
    """Runs `events` on its own thread, handing them to the event loop; the slot is given
    back when the thread ends. stop() (Stop on the page, or the client gone) ends it at the
    next token; a client that stops reading blocks it after BUFFERED_EVENTS events."""

    def __init__(
        self,
        events: Callable[[], Iterator[dict[str, Any]]],
        slots: Slots,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._events = events
        self._slots = slots
        self._loop = loop
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._credit = threading.Semaphore(BUFFERED_EVENTS)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._work, name="playground-generation", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _hand(self, item: dict[str, Any] | None) -> bool:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: the server is shutting down
            self._stop.set()
            return False
        return True

    def _work(self) -> None:
        events = self._events()
        try:
            for event in events:
                while not self._credit.acquire(timeout=0.2):
                    if self._stop.is_set():
                        return
                if self._stop.is_set() or not self._hand(event):
                    return
        except Exception as exc:  # a failure mid-stream reaches the page as an error event
            self._hand({"event": "error", "message": f"generation failed: {exc}"})
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # leaves the model's inference mode on this same thread
            self._hand(None)
            self._slots.give()

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        try:
            while (event := await self._queue.get()) is not None:
                self._credit.release()
                yield event
        finally:  # the response ended: finished, stopped, or the client went away
            self.stop()
