"""Another session holding a lock, so that a call waits on the server: for timeouts,
faults injected mid-call and cancellation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def table_locked(dsn: str) -> Iterator[None]:
    """Another session holds customers in ACCESS EXCLUSIVE mode: reads and writes wait."""
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        yield
        holder.rollback()


@contextmanager
def row_locked(
    dsn: str, customer_id: int, *, then: Callable[[], object] | None = None
) -> Iterator[None]:
    """Another session holds the customer's row lock (a write waits for it) until the block
    ends; ``then``, when given, runs 0.3 s in, while the write waits (a fault to inject)."""
    holder = psycopg.connect(dsn)
    fault = threading.Timer(0.3, then) if then else None
    try:
        holder.execute("SELECT 1 FROM customers WHERE id = %s FOR UPDATE", [customer_id])
        if fault:
            fault.start()
        yield
    finally:
        if fault:
            fault.join()
        holder.close()  # closed, not committed: a restart may have cut it too
