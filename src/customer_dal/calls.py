"""How one repository call runs: its transaction scope and its error contract.

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

Work that changes settings with ``SET LOCAL`` (search) asks for ``undo``: its
transaction or savepoint is always rolled back, so the caller's session and
transaction keep their own settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus

from .errors import translate

__all__ = ["run_call"]

T = TypeVar("T")

# One name is enough: a call's savepoint never outlives the call.
_SAVEPOINT = "SAVEPOINT customer_dal_call"
_RELEASE = "RELEASE SAVEPOINT customer_dal_call"
_ROLL_BACK = "ROLLBACK TO SAVEPOINT customer_dal_call; RELEASE SAVEPOINT customer_dal_call"


def run_call(
    conn: psycopg.Connection[Any],
    work: Callable[[], T],
    *,
    writes: bool = False,
    statements: int = 1,
    undo: bool = False,
) -> T:
    """Run one repository call's ``work`` on ``conn`` (see the module docstring).

    ``writes``: the work may change data (for the "outcome unknown" message of a
    lost connection). ``statements``: how many statements it runs, which must
    share one transaction when more than one. ``undo``: always roll it back.
    """
    # pgconn's status is a plain int: cheaper than conn.info on a hot path.
    status = conn.pgconn.transaction_status
    # ACTIVE: another thread's statement is running on this shared autocommit
    # connection; it tells nothing of a transaction of this caller's.
    autocommit = conn.autocommit
    idle = status == TransactionStatus.IDLE or (status == TransactionStatus.ACTIVE and autocommit)
    try:
        if idle and autocommit:
            if statements == 1 and not undo:
                return work()
            with conn.transaction(force_rollback=undo):
                return work()
        if idle:
            return _joining_callers_transaction(conn, work, undo=undo)
        with conn.transaction(force_rollback=undo):
            return work()
    except psycopg.Error as exc:
        # Without autocommit, nothing commits but the caller: a lost connection lost it all.
        in_transaction = not (idle and autocommit)
        raise translate(exc, conn, writes=writes, in_transaction=in_transaction) from exc


def _joining_callers_transaction(
    conn: psycopg.Connection[Any], work: Callable[[], T], *, undo: bool
) -> T:
    """Run ``work`` in a savepoint of the transaction psycopg opens implicitly; never commit.

    ``conn.transaction()`` would BEGIN *and COMMIT* here, committing behind
    the caller's back, so the savepoint is managed by hand.
    """
    conn.execute(_SAVEPOINT)  # psycopg sends BEGIN first, as before any statement
    try:
        result = work()
    except BaseException:
        if not conn.closed:  # a lost connection took the transaction with it
            with contextlib.suppress(psycopg.Error):  # the work's own error says more
                conn.execute(_ROLL_BACK)
        raise
    conn.execute(_ROLL_BACK if undo else _RELEASE)
    return result
