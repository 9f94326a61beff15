"""Ctrl-C during training: stop after the current step and save, however many signals come
(and `InterruptPerPress`, the same rule for an interactive prompt).

A terminal's Ctrl-C sends SIGINT to its whole foreground process group, and a launcher in
that group (`uv run`, torchrun) may pass it on once more, so one press can reach the trainer
as two or three signals a few milliseconds apart. Signals closer than `SAME_PRESS_S` to the
previous one therefore count as the same press:

- the first press asks the trainer to stop after the current step and save a checkpoint;
- a separate press, more than `SAME_PRESS_S` after the last signal, aborts at once without
  saving (KeyboardInterrupt, exit 130), for a step or a save that takes too long; the
  checkpoints already in the run folder are complete and stay.

When the block ends after a press, the rest of that press is still ignored, so signals that
arrive while the run closes cannot turn a saved stop into an abort.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from types import FrameType, TracebackType

from tqdm import tqdm

SAME_PRESS_S = 1.0  # signals this close together are one Ctrl-C

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class _PerPress:
    """A SIGINT handler for the length of a `with` block (main thread only) that calls
    `_press()` once per Ctrl-C press, however many signals the press arrives as."""

    def __init__(self) -> None:
        self.last = -math.inf  # when the latest SIGINT arrived (time.monotonic)
        self.previous: Handler = None
        self.installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        same_press, self.last = now - self.last < SAME_PRESS_S, now
        if not same_press:
            self._press()

    def _press(self) -> None:
        raise KeyboardInterrupt

    def _install(self) -> None:
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.installed = True
        except ValueError:  # not the main thread: leave signals alone
            pass

    def _uninstall(self, after: Handler) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, after if after is not None else signal.default_int_handler)


class StopOnCtrlC(_PerPress):
    """`with StopOnCtrlC(trainer.request_stop):` installs the handler for the block."""

    def __init__(self, request_stop: Callable[[], None], *, announce: bool = True) -> None:
        super().__init__()
        self.request_stop = request_stop
        self.announce = announce
        self.pressed = False

    def _press(self) -> None:
        if not self.pressed:
            self.pressed = True
            self.request_stop()
            self._say(
                "Ctrl-C: stopping after this step and saving a checkpoint "
                f"(Ctrl-C again, more than {SAME_PRESS_S:g}s later, aborts without saving)"
            )
            return
        self._say("Ctrl-C again: aborting without saving; the checkpoints already saved stay")
        raise KeyboardInterrupt

    def _say(self, text: str) -> None:
        if self.announce:
            tqdm.write(text)

    def __enter__(self) -> StopOnCtrlC:
        self._install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        after: Handler = self.previous
        if self.pressed and exc_type is None:
            after = _rest_of_press(self.previous, self.last)
        self._uninstall(after)


def _rest_of_press(previous: Handler, last: float) -> Handler:
    """A handler that swallows the tail of the press, then puts `previous` back and defers."""
    seen = [last]

    def handler(signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if now - seen[0] < SAME_PRESS_S:
            seen[0] = now
            return
        restored = previous if previous is not None else signal.default_int_handler
        signal.signal(signal.SIGINT, restored)
        if callable(restored):
            restored(signum, frame)
        elif restored == signal.SIG_DFL:
            raise KeyboardInterrupt

    return handler


class InterruptPerPress(_PerPress):
    """`with InterruptPerPress():` one KeyboardInterrupt per Ctrl-C press, however many
    signals it arrives as (an interactive prompt: the echo of a press that stopped a reply
    must not also end the session at the next prompt)."""

    def __enter__(self) -> InterruptPerPress:
        self._install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._uninstall(self.previous)
