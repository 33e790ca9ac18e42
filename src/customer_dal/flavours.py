"""The little that differs, by hand, between the async repositories and their sync twins.

The repositories are written once, async (``*_async.py``); ``tools/async_to_sync.py``
generates the sync modules from them, renaming ``AsyncX`` to ``X``. What cannot
be the same code in both lives here, each pair side by side:

* **Cursors** (raw ones: the queries carry PostgreSQL's own placeholders, see
  :mod:`customer_dal.queries`). Creating a cursor costs about as much client CPU as the rest of
  a sync call, so :class:`Cursors` keeps one pair per thread (psycopg cursors
  must not be shared by threads; the connection may be). Async tasks share a
  thread, and a cursor shared by two tasks on one connection would hand one
  task the other's rows, so :class:`AsyncCursors` makes a cursor per
  statement, as ``AsyncConnection.execute`` itself does.
* **The connection check**: a repository given the other flavour's connection
  says which class to use, at construction rather than at the first call.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import RowMaker, tuple_row

from .models import Customer

if TYPE_CHECKING:  # where psycopg's own row factories take it from
    from psycopg._cursor_base import BaseCursor

__all__ = ["AsyncCursors", "Cursors", "require_connection"]


def _customer_row(cursor: BaseCursor[Any, Any]) -> RowMaker[Customer]:
    """Rows as Customers, each validated by pydantic-core from a dict of its columns.

    Twice as fast as psycopg's ``class_row(Customer)``, whose ``Customer(**row)``
    goes through ``BaseModel.__init__`` (and faster than ``model_construct``):
    a search's 20 customers cost as much client CPU as the rest of the call.
    """
    # From the result itself: cursor.description builds a Column object per column,
    # which cost a get 15% more client CPU. (Our column names are ASCII.)
    result = cursor.pgresult
    names = [(result.fname(i) or b"").decode() for i in range(result.nfields)] if result else []
    validate = Customer.__pydantic_validator__.validate_python

    def customer(values: Sequence[Any]) -> Customer:
        built: Customer = validate(dict(zip(names, values, strict=True)))
        return built

    return customer


class Cursors(threading.local):
    """This thread's cursors on the repository's connection, made once and reused."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.customers = psycopg.RawCursor(conn, row_factory=_customer_row)

    @functools.cached_property
    def values(self) -> psycopg.RawCursor[tuple[Any, ...]]:
        """Made on first use: get, create and update never need it, and a repository
        built per request should cost no more than the cursors it uses."""
        # Its own row factory: a connection opened with row_factory=dict_row
        # must not change what _fetch_value reads.
        return psycopg.RawCursor(self.conn, row_factory=tuple_row)


class AsyncCursors:
    """A new cursor for each statement, so concurrent tasks never share one."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @property
    def customers(self) -> psycopg.AsyncRawCursor[Customer]:
        return psycopg.AsyncRawCursor(self.conn, row_factory=_customer_row)

    @property
    def values(self) -> psycopg.AsyncRawCursor[tuple[Any, ...]]:
        return psycopg.AsyncRawCursor(self.conn, row_factory=tuple_row)


def require_connection(conn: object, expected: type, repository: object) -> None:
    """Raise ``TypeError`` unless ``conn`` is an ``expected`` (a psycopg connection class),
    naming the repository class that takes the connection given."""
    if isinstance(conn, expected):
        return
    name = type(repository).__name__
    twin = name.removeprefix("Async") if name.startswith("Async") else f"Async{name}"
    wanted = f"{name} needs a psycopg.{expected.__name__}"
    if isinstance(conn, psycopg.Connection | psycopg.AsyncConnection):
        raise TypeError(f"{wanted}, not a psycopg.{type(conn).__name__}: use {twin} instead")
    raise TypeError(f"{wanted}, not {type(conn).__name__}")
