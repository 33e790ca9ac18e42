"""A one-line progress report with rows/s, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Call with the number of rows done so far; ``finish()`` ends the line.

    The line is redrawn in place (``\\r``), so anything else written to the
    terminal must call :meth:`clear` first, or it would be glued onto it.
    Silent unless ``stream`` is a terminal, so piped output and logs stay clean.
    """

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty()
        self._label = label
        self._phase = ""
        self._started = time.perf_counter()
        self._width = 0  # characters shown on the line now; 0 when it is clear

    def __call__(self, rows: int) -> None:
        if not self._enabled:
            return
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._show(f"{self._heading()}: {rows:,} rows, {rows / elapsed:,.0f} rows/s")

    def phase(self, what: str) -> None:
        """Say what the work turned to (``checking 20,011 rows for conflicts``): the
        count and the rate that follow are this phase's, not a silent restart."""
        self._phase = what
        self._started = time.perf_counter()
        if self._enabled:
            self._show(self._heading())

    def clear(self) -> None:
        """Blank the line and return to its start, ready for other output."""
        if self._width:
            self._stream.write(f"\r{' ' * self._width}\r")
            self._stream.flush()
            self._width = 0

    def finish(self) -> None:
        """End the line, leaving the last report on screen."""
        if self._width:
            self._stream.write("\n")
            self._stream.flush()
            self._width = 0

    def _heading(self) -> str:
        return f"{self._label}, {self._phase}" if self._phase else self._label

    def _show(self, text: str) -> None:
        # Spaces over whatever a longer earlier report left; no terminal escapes needed.
        self._stream.write(f"\r{text}{' ' * max(self._width - len(text), 0)}")
        self._stream.flush()
        self._width = len(text)
