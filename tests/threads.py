"""Run the same work in several threads released at one instant."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def run_together(work: Callable[[int], T], count: int) -> list[T | BaseException]:
    """Call ``work(0)`` ... ``work(count - 1)`` in threads; return results or exceptions."""
    barrier = threading.Barrier(count)
    outcomes: list[T | BaseException] = [RuntimeError("did not run")] * count

    def worker(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = work(index)
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
