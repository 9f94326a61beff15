"""A dependency-free progress bar for downloads, data preparation and training.

On a terminal it redraws one line; otherwise (logs, pipes, tests) it prints a plain line at
most every `min_interval` seconds so captured output stays short.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    """1h02m03s / 4m05s / 6s."""
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m{sec:02d}s"
    if m:
        return f"{m}m{sec:02d}s"
    return f"{sec}s"


def format_count(n: float) -> str:
    """12.3k / 4.5M style compact numbers."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


class Progress:
    """Progress towards `total` units, with rate and ETA; `update` sets the absolute position."""

    def __init__(
        self,
        total: float | None,
        desc: str = "",
        unit: str = "",
        stream: TextIO | None = None,
        enabled: bool = True,
        min_interval: float = 0.2,
        start: float = 0.0,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval if self.tty else max(min_interval, 10.0)
        self.start_pos = start
        self.pos = start
        self.t0 = time.perf_counter()
        self.last_draw = 0.0
        self.drawn_pos: float | None = None
        self.extra = ""

    def update(self, pos: float, extra: str = "", force: bool = False) -> None:
        """Move to `pos`; redraw if enough time passed (or `force`)."""
        self.pos = pos
        self.extra = extra
        now = time.perf_counter()
        if self.enabled and (force or now - self.last_draw >= self.min_interval):
            self.last_draw = now
            self._draw(now)

    def advance(self, n: float, extra: str = "") -> None:
        self.update(self.pos + n, extra)

    def _draw(self, now: float) -> None:
        self.drawn_pos = self.pos
        elapsed = now - self.t0
        done = self.pos - self.start_pos
        parts = [self.desc] if self.desc else []
        if self.total:
            frac = min(1.0, self.pos / self.total)
            width = 20
            filled = int(frac * width)
            parts.append(f"{frac * 100:3.0f}% |{'#' * filled}{'.' * (width - filled)}|")
            parts.append(f"{format_count(self.pos)}/{format_count(self.total)}{self.unit}")
        else:
            parts.append(f"{format_count(self.pos)}{self.unit}")
        if self.extra:
            parts.append(self.extra)
        if elapsed > 0 and done > 0 and self.total:
            eta = (self.total - self.pos) / (done / elapsed)
            parts.append(f"ETA {format_seconds(eta)}")
        line = " ".join(parts)
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(80))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if not self.enabled or (not self.tty and self.drawn_pos == self.pos):
            return
        self._draw(time.perf_counter())
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
