"""A tiny progress reporter on stderr: throttled lines, silent when disabled."""

from __future__ import annotations

import sys
import time


def _fmt_seconds(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class Progress:
    """Prints at most one line per `every` seconds (always the final one) when enabled."""

    def __init__(self, enabled: bool, every: float = 1.0) -> None:
        self.enabled = enabled
        self.every = every
        self._start = time.perf_counter()
        self._last = -1e9

    def restart(self) -> None:
        """Reset the clock used for rates and ETAs."""
        self._start = time.perf_counter()
        self._last = -1e9

    def _due(self, final: bool) -> bool:
        if not self.enabled:
            return False
        now = time.perf_counter()
        if not final and now - self._last < self.every:
            return False
        self._last = now
        return True

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, file=sys.stderr, flush=True)

    def counting(self, done_bytes: int, total_bytes: int | None, unique: int, final: bool) -> None:
        """Report pre-split progress: bytes read, unique chunks, ETA when the total is known."""
        if not self._due(final):
            return
        elapsed = time.perf_counter() - self._start
        mb = done_bytes / 1e6
        line = f"counting chunks: {mb:.1f} MB read, {unique:,} unique chunks, {elapsed:.1f}s"
        if total_bytes and 0 < done_bytes < total_bytes and not final:
            eta = elapsed * (total_bytes - done_bytes) / done_bytes
            line += f", {100 * done_bytes / total_bytes:.0f}%, ETA {_fmt_seconds(eta)}"
        print(line, file=sys.stderr, flush=True)

    def merging(self, done: int, total: int, final: bool) -> None:
        """Report merge progress with rate and ETA."""
        if not self._due(final):
            return
        elapsed = time.perf_counter() - self._start
        line = f"merges: {done:,}/{total:,}, {elapsed:.1f}s"
        if done and not final:
            eta = elapsed * (total - done) / done
            line += f", ETA {_fmt_seconds(eta)}"
        print(line, file=sys.stderr, flush=True)
