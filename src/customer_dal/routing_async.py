"""Repositories over a pool: each call borrows a connection, from the server its kind needs.

:class:`AsyncCustomerRepository` and :class:`AsyncUserRepository` work on one
connection, which the caller owns (and can hold a transaction on). Their pooled
twins here take a pool from :func:`customer_dal.async_pool` instead, are safe
to share (between the threads or the tasks that use them), and route each call:

* **read-only calls** (``get``, ``get_by_phone``, ``search``, ``list``,
  ``count_active``) go to the pool's hot standby when it has one, falling back
  to the primary when the standby is away (see :mod:`customer_dal.replicas_async`);
* **writes** (``create``, ``update``, ``soft_delete``, ``restore``) go to the primary;
* after ``on_primary()``, reads go to the primary too: a standby may lag, so a
  caller who must see its own write (read-your-writes) reads there.

Each call is one transaction, exactly as on an autocommit connection. Several
calls that must be atomic together need one connection and a transaction
(``async with pool.connection() as conn, conn.transaction():``), and so run on
the primary, every read included.

The methods are the connection-bound repositories' own, called on a repository
built for the borrowed connection (which costs a few microseconds): their
arguments, results, validation and errors are the same by construction.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import psycopg

from .customers_async import AsyncCustomerRepository
from .pools_async import AsyncPool
from .users_async import AsyncUserRepository

__all__ = ["AsyncPooledCustomerRepository", "AsyncPooledUserRepository"]

P = ParamSpec("P")
T = TypeVar("T")
Repository = TypeVar("Repository")


class _Pooled(Generic[Repository]):
    # The connection-bound repository whose methods these are.
    _repository: Callable[[psycopg.AsyncConnection[Any]], Repository]

    def __init__(self, pool: AsyncPool, *, reads_on_primary: bool = False) -> None:
        if not isinstance(pool, AsyncPool):
            raise TypeError(
                f"{type(self).__name__} takes a pool from customer_dal.async_pool(), not "
                f"{type(pool).__name__}; for one connection use "
                f"{type(self).__name__.replace('Pooled', '')}"
            )
        self._pool = pool
        self._reads_on_primary = reads_on_primary


def _read(
    method: Callable[Concatenate[Any, P], Awaitable[T]],
) -> Callable[Concatenate[_Pooled[Any], P], Awaitable[T]]:
    """The pooled form of a read-only method: on the standby, unless told otherwise."""
    return _pooled(method, reads=True)


def _write(
    method: Callable[Concatenate[Any, P], Awaitable[T]],
) -> Callable[Concatenate[_Pooled[Any], P], Awaitable[T]]:
    """The pooled form of a method that writes: always on the primary."""
    return _pooled(method, reads=False)


def _pooled(
    method: Callable[Concatenate[Any, P], Awaitable[T]], *, reads: bool
) -> Callable[Concatenate[_Pooled[Any], P], Awaitable[T]]:
    async def call(self: _Pooled[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
        async def on(conn: psycopg.AsyncConnection[Any]) -> T:
            return await method(self._repository(conn), *args, **kwargs)

        if reads and not self._reads_on_primary:
            return await self._pool.run_read(on)
        return await self._pool.run(on)

    functools.update_wrapper(call, method)
    return call


class AsyncPooledCustomerRepository(_Pooled[AsyncCustomerRepository]):
    """:class:`AsyncCustomerRepository`'s calls over a pool, reads routed to its standby."""

    _repository = AsyncCustomerRepository

    create = _write(AsyncCustomerRepository.create)
    update = _write(AsyncCustomerRepository.update)
    soft_delete = _write(AsyncCustomerRepository.soft_delete)
    restore = _write(AsyncCustomerRepository.restore)
    get = _read(AsyncCustomerRepository.get)
    get_by_phone = _read(AsyncCustomerRepository.get_by_phone)
    search = _read(AsyncCustomerRepository.search)
    list = _read(AsyncCustomerRepository.list)
    count_active = _read(AsyncCustomerRepository.count_active)

    def on_primary(self) -> AsyncPooledCustomerRepository:
        """This repository, reading from the primary: for read-your-writes."""
        return AsyncPooledCustomerRepository(self._pool, reads_on_primary=True)


class AsyncPooledUserRepository(_Pooled[AsyncUserRepository]):
    """:class:`AsyncUserRepository`'s calls over a pool, reads routed to its standby."""

    _repository = AsyncUserRepository

    create = _write(AsyncUserRepository.create)
    get = _read(AsyncUserRepository.get)

    def on_primary(self) -> AsyncPooledUserRepository:
        """This repository, reading from the primary: for read-your-writes."""
        return AsyncPooledUserRepository(self._pool, reads_on_primary=True)
