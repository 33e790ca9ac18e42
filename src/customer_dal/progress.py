"""A one-line progress report with rows/s, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Call with the number of rows done so far; ``finish()`` ends the line.

    Silent unless ``stream`` is a terminal, so piped output and logs stay clean.
    """

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._label = label
        self._started = time.perf_counter()
        self._shown = False

    def __call__(self, rows: int) -> None:
        if not self._enabled:
            return
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._stream.write(f"\r{self._label}: {rows:,} rows, {rows / elapsed:,.0f} rows/s ")
        self._stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self._stream.write("\n")
            self._stream.flush()
