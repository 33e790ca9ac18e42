# generated from src/customer_dal/routing_async.py by tools/async_to_sync.py; do not edit
"""Repositories over a pool: each call borrows a connection, from the server its kind needs.

:class:`CustomerRepository` and :class:`UserRepository` work on one
connection, which the caller owns (and can hold a transaction on). Their pooled
twins here take a pool from :func:`customer_dal.pool` instead, are safe
to share (between the threads or the tasks that use them), and route each call:

* **read-only calls** (``get``, ``get_by_phone``, ``search``, ``list``,
  ``count_active``) go to the pool's hot standby when it has one, falling back
  to the primary when the standby is away (see :mod:`customer_dal.replicas`);
* **writes** (``create``, ``update``, ``soft_delete``, ``restore``) go to the primary;
* after ``on_primary()``, reads go to the primary too: a standby may lag, so a
  caller who must see its own write (read-your-writes) reads there.

Each call is one transaction, exactly as on an autocommit connection. Several
calls that must be atomic together need one connection and a transaction
(``with pool.connection() as conn, conn.transaction():``), and so run on
the primary, every read included.

The methods are the connection-bound repositories' own, called on a repository
built for the borrowed connection (which costs a few microseconds): their
arguments, results, validation and errors are the same by construction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

import psycopg

from .customers import CustomerRepository
from .pools import Pool
from .users import UserRepository

__all__ = ["PooledCustomerRepository", "PooledUserRepository"]

P = ParamSpec("P")
T = TypeVar("T")
Repository = TypeVar("Repository")


class _Pooled(Generic[Repository]):
    # The connection-bound repository whose methods these are.
    _repository: Callable[[psycopg.Connection[Any]], Repository]

    def __init__(self, pool: Pool, *, reads_on_primary: bool = False) -> None:
        if not isinstance(pool, Pool):
            raise TypeError(
                f"{type(self).__name__} takes a pool from customer_dal.pool(), not "
                f"{type(pool).__name__}; for one connection use "
                f"{type(self).__name__.replace('Pooled', '')}"
            )
        self._pool = pool
        self._reads_on_primary = reads_on_primary


def _read(
    method: Callable[Concatenate[Any, P], T],
) -> Callable[Concatenate[_Pooled[Any], P], T]:
    """The pooled form of a read-only method: on the standby, unless told otherwise."""
    return _pooled(method, reads=True)


def _write(
    method: Callable[Concatenate[Any, P], T],
) -> Callable[Concatenate[_Pooled[Any], P], T]:
    """The pooled form of a method that writes: always on the primary."""
    return _pooled(method, reads=False)


def _pooled(
    method: Callable[Concatenate[Any, P], T], *, reads: bool
) -> Callable[Concatenate[_Pooled[Any], P], T]:
    def call(self: _Pooled[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
        def on(conn: psycopg.Connection[Any]) -> T:
            return method(self._repository(conn), *args, **kwargs)

        if reads and not self._reads_on_primary:
            return self._pool.run_read(on)
        return self._pool.run(on)

    functools.update_wrapper(call, method)
    return call


class PooledCustomerRepository(_Pooled[CustomerRepository]):
    """:class:`CustomerRepository`'s calls over a pool, reads routed to its standby."""

    _repository = CustomerRepository

    create = _write(CustomerRepository.create)
    update = _write(CustomerRepository.update)
    soft_delete = _write(CustomerRepository.soft_delete)
    restore = _write(CustomerRepository.restore)
    get = _read(CustomerRepository.get)
    get_by_phone = _read(CustomerRepository.get_by_phone)
    search = _read(CustomerRepository.search)
    list = _read(CustomerRepository.list)
    count_active = _read(CustomerRepository.count_active)

    def on_primary(self) -> PooledCustomerRepository:
        """This repository, reading from the primary: for read-your-writes."""
        return PooledCustomerRepository(self._pool, reads_on_primary=True)


class PooledUserRepository(_Pooled[UserRepository]):
    """:class:`UserRepository`'s calls over a pool, reads routed to its standby."""

    _repository = UserRepository

    create = _write(UserRepository.create)
    get = _read(UserRepository.get)

    def on_primary(self) -> PooledUserRepository:
        """This repository, reading from the primary: for read-your-writes."""
        return PooledUserRepository(self._pool, reads_on_primary=True)
