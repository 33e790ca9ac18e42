"""Each repository call is atomic by itself and composes inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

__all__ = ["atomic"]


@contextmanager
def atomic(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Run a repository call so that it either happens whole or leaves no trace.

    On an autocommit connection outside any transaction, one statement is
    already atomic: no BEGIN/COMMIT round trips are spent on it. Inside the
    caller's ``with conn.transaction():`` block the call runs in a savepoint, so
    an expected failure (a duplicate phone, say) leaves the caller's transaction
    usable; an exception the caller lets escape still rolls everything back.
    """
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        yield
    else:
        with conn.transaction():
            yield
