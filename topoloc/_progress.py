"""`maybe_bar`: a tqdm progress bar when one is asked for, else a stand-in whose methods do nothing.

Not a disabled tqdm: even a disabled one starts tqdm's monitor thread, which outlives the bar (and the
library's callers, e.g. a render in a script, would find a thread they never asked for).
"""

from __future__ import annotations

from typing import Any

__all__ = ["NoBar", "maybe_bar"]


class NoBar:
    """A progress bar that shows nothing: the tqdm methods and counters the library uses, as no-ops."""

    def __init__(self) -> None:
        self.n = 0
        self.total: int | None = None

    def update(self, n: int = 1) -> None:
        """Nothing to count."""

    def set_postfix(self, **kwargs: Any) -> None:
        """Nothing to show."""

    def refresh(self) -> None:
        """Nothing to draw."""

    def close(self) -> None:
        """Nothing to close."""


def maybe_bar(show: bool, **kwargs: Any) -> Any:
    """``tqdm.auto.tqdm(**kwargs)`` if ``show``, else a `NoBar` (tqdm is then not even imported).

    Example:
        >>> bar = maybe_bar(False, total=10, desc="decode")
        >>> bar.update(3); bar.close()
        >>> type(bar).__name__
        'NoBar'
    """
    if not show:
        return NoBar()
    from tqdm.auto import tqdm  # noqa: PLC0415 - only with a bar

    return tqdm(**kwargs)
