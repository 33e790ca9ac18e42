"""Each repository call is atomic by itself and composes inside the caller's transaction."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

__all__ = ["needs_transaction"]


def needs_transaction(conn: psycopg.Connection[Any]) -> bool:
    """Whether a single write must be wrapped in ``conn.transaction()`` to be atomic.

    On an autocommit connection outside any transaction, one statement is
    atomic already: no BEGIN/COMMIT round trips are spent on it. Inside the
    caller's ``with conn.transaction():`` block the write runs in a savepoint,
    so an expected failure (a duplicate phone, say) leaves the caller's
    transaction usable, while an exception the caller lets escape still rolls
    everything back. On a connection without autocommit it gets a transaction
    of its own, committed when the call succeeds.
    """
    # pgconn's status is a plain int: cheaper than conn.info on a hot path.
    return not conn.autocommit or conn.pgconn.transaction_status != TransactionStatus.IDLE
