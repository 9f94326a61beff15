"""Progress bars that cost nothing when hidden: tqdm is imported only to show one.

Training is often run quietly (and its peak memory compared against other trainers'), so a
hidden bar is a stand-in that ignores every call instead of a disabled tqdm bar.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


class _Hidden:
    """A bar that is not shown: every tqdm call used by the trainers does nothing."""

    n = 0

    def update(self, n: float = 1) -> None:
        """Ignore progress."""

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Ignore the postfix."""

    def close(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> _Hidden:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


def progress(show: bool, **options: Any) -> Any:
    """A tqdm bar with `options` when `show`, else a stand-in that ignores every call."""
    if not show:
        return _Hidden()
    from tqdm import tqdm

    return tqdm(**options)
