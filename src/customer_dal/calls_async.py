"""How one repository call runs: its statements, its transaction scope and its error contract.

Every repository method hands its work to :func:`run_call`, which decides how
the work meets the caller's transaction and turns any driver error into the
library's exception (:func:`customer_dal.errors.translate`):

* **Autocommit connection, no transaction open.** A single statement is atomic
  already and runs bare (no BEGIN/COMMIT round trips); work of several
  statements gets a transaction of its own.
* **Inside the caller's transaction** (``with conn.transaction():``, or a
  connection without autocommit that is already in a transaction): the work
  runs in a savepoint, so a failure the caller catches (a duplicate phone, a
  timeout) leaves the caller's transaction usable, and an exception the caller
  lets escape still rolls everything back.
* **A connection without autocommit, idle.** psycopg's rule holds: a statement
  starts a transaction and only the caller commits it. The work joins that
  transaction inside a savepoint and never commits.

Work that only reads but changes settings with ``SET LOCAL`` (search) asks for
``undo``: its savepoint is always rolled back, so the caller's transaction
keeps its own settings. On an idle autocommit connection it runs in pipeline
mode instead, without BEGIN or COMMIT: statements sent before the pipeline's
one Sync form a single implicit transaction on the server, whose end (at that
Sync) ends the ``SET LOCAL``s. Work that only sends its statements, and
whose caller reads the cursors after :func:`run_call` returns, costs one
round trip (the Sync brings every result) rather than one per statement and
two more for the transaction.

**Cancelled work** (an async task cancelled mid-call, ``asyncio.wait_for`` or
``asyncio.timeout`` running out) never stays half-done: psycopg cancels the
statement on the server and waits for it to stop, and the cancellation then
leaves through the same paths as any exception, rolling back the work's
transaction or savepoint. The connection ends idle (or, if the server would not
stop the statement, closed), ready for the caller or its pool.

Each statement goes through :func:`execute`, which logs it at DEBUG.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from .errors import DatabaseUnavailableError, translate
from .queries import Query, log

__all__ = ["execute", "run_call"]

T = TypeVar("T")
Row = TypeVar("Row")

# One name is enough: a call's savepoint never outlives the call.
_SAVEPOINT = "SAVEPOINT customer_dal_call"
_RELEASE = "RELEASE SAVEPOINT customer_dal_call"
_ROLL_BACK = "ROLLBACK TO SAVEPOINT customer_dal_call; RELEASE SAVEPOINT customer_dal_call"


async def execute(
    cursor: psycopg.AsyncRawCursor[Row], query: Query, params: Mapping[str, Any] | None = None
) -> psycopg.AsyncRawCursor[Row]:
    """Run ``query`` with ``params`` (by name) on a raw cursor, logged at DEBUG when that
    is enabled (at the cost, in a pipeline, of a round trip per statement)."""
    values = query.values(params)
    if not log.isEnabledFor(logging.DEBUG):  # the hot path: one cached check
        return await cursor.execute(query.native_sql, values)
    started = time.perf_counter()
    await cursor.execute(query.native_sql, values)
    if cursor.connection.pgconn.pipeline_status:  # pipeline mode: the results come at fetch
        # Wait for them here, or the line would give the time to queue the statement
        # and no row count. A Flush, not a Sync: the pipeline's transaction goes on.
        # (scroll fetches first; then an empty result has no row 0 to stay at.)
        with contextlib.suppress(IndexError):
            await cursor.scroll(0)
    elapsed_ms = (time.perf_counter() - started) * 1000
    log.debug("%s: %.2f ms, %d rows", query.name, elapsed_ms, cursor.rowcount)
    return cursor


async def run_call(
    conn: psycopg.AsyncConnection[Any],
    work: Callable[[], Awaitable[T]],
    *,
    writes: bool = False,
    statements: int = 1,
    undo: bool = False,
) -> T:
    """Run one repository call's ``work`` on ``conn`` (see the module docstring).

    ``writes``: the work may change data (for the "outcome unknown" message of a
    lost connection). ``statements``: how many statements it runs, which must
    share one transaction when more than one. ``undo``: the work only reads, and its
    ``SET LOCAL``s must end with the call (see the module docstring).
    """
    # pgconn's status is a plain int: cheaper than conn.info on a hot path.
    status = conn.pgconn.transaction_status
    # ACTIVE: another thread's (or task's) statement is running on this shared
    # autocommit connection; it tells nothing of a transaction of this caller's.
    autocommit = conn.autocommit
    idle = status == TransactionStatus.IDLE or (status == TransactionStatus.ACTIVE and autocommit)
    try:
        if idle and autocommit:
            if statements == 1 and not undo:
                return await work()
            if undo:  # reads only: one implicit transaction, ended by the pipeline's Sync
                async with conn.pipeline():
                    return await work()
            async with conn.transaction():
                return await work()
        if idle:
            return await _joining_callers_transaction(conn, work, undo=undo)
        async with conn.transaction(force_rollback=undo):
            return await work()
    except psycopg.Error as exc:
        # Without autocommit, nothing commits but the caller: a lost connection lost it all.
        in_transaction = not (idle and autocommit)
        error = translate(exc, conn, writes=writes, in_transaction=in_transaction)
        if isinstance(error, DatabaseUnavailableError):
            await conn.close()  # broken: the caller's next step (or its pool) starts clean
        raise error from exc


async def _joining_callers_transaction(
    conn: psycopg.AsyncConnection[Any], work: Callable[[], Awaitable[T]], *, undo: bool
) -> T:
    """Run ``work`` in a savepoint of the transaction psycopg opens implicitly; never commit.

    ``conn.transaction()`` would BEGIN *and COMMIT* here, committing behind
    the caller's back, so the savepoint is managed by hand.
    """
    await conn.execute(_SAVEPOINT)  # psycopg sends BEGIN first, as before any statement
    try:
        result = await work()
    except BaseException:
        if not conn.closed:  # a lost connection took the transaction with it
            with contextlib.suppress(psycopg.Error):  # the work's own error says more
                await conn.execute(_ROLL_BACK)
        raise
    await conn.execute(_ROLL_BACK if undo else _RELEASE)
    return result
