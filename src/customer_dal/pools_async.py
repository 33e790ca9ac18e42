"""Connection pools configured as the repositories need, with an optional read replica.

:func:`async_pool` opens a ``psycopg_pool.AsyncConnectionPool`` whose connections
are :func:`~customer_dal.db.connect`'s (autocommit, a connect timeout, no
prepared statements behind a transaction-mode pooler), and whose failures to
hand out a connection are the library's :class:`DatabaseUnavailableError`.
With a hot standby (``replica_dsn=`` or ``DATABASE_REPLICA_URL``) it holds a
second pool for reads (:mod:`customer_dal.replicas_async`), which the pooled
repositories use (:mod:`customer_dal.routing_async`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, NoReturn, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout, TooManyRequests

from .db import (
    POOL_OPTIONS,
    configured_replica_dsn,
    connection_settings,
    describe,
    error_summary,
    resolve_dsn,
)
from .errors import DatabaseUnavailableError
from .replicas_async import AsyncReadReplica

__all__ = ["AsyncPool", "async_pool"]

T = TypeVar("T")
# How long a read waits for a standby connection before it reads from the
# primary, and how long reads then leave the standby alone (see replicas_async).
DEFAULT_REPLICA_WAIT = 2.0
DEFAULT_REPLICA_RETRY = 5.0


async def async_pool(
    dsn: str | None = None,
    *,
    pooler: str | None = None,
    replica_dsn: str | None = None,
    replica_wait: float = DEFAULT_REPLICA_WAIT,
    replica_retry: float = DEFAULT_REPLICA_RETRY,
    **options: Any,
) -> AsyncPool:
    """Open a connection pool whose connections are configured as ``connect()``'s.

    ``options`` that psycopg_pool's pools take (``min_size``, ``max_size``,
    ``timeout``, ``name``, ``max_idle``, ``check``, ...) configure the pool; the
    rest go to its connections, as for ``connect()``. Returns once ``min_size``
    connections are open; a server that gives none within the pool's
    ``timeout`` raises :class:`DatabaseUnavailableError` with the reason, and so
    does every later ``getconn()`` or ``connection()`` that waits for a
    connection longer than ``timeout`` (see :class:`AsyncPool`). Use it as a
    context manager, or call ``close()``, to stop its workers and connections.

    ``replica_dsn`` (else ``$DATABASE_REPLICA_URL``) names a hot standby: the
    pool then holds a second pool, of the same options, for the read-only
    calls of the pooled repositories. It opens without waiting: a standby that
    is down must not keep the application down, since reads fall back to the
    primary (see :mod:`customer_dal.replicas_async` for ``replica_wait`` and
    ``replica_retry``).
    """
    resolved = resolve_dsn(dsn)
    replica = configured_replica_dsn(replica_dsn)
    pool_options = {name: value for name, value in options.items() if name in POOL_OPTIONS}
    others = {name: value for name, value in options.items() if name not in POOL_OPTIONS}
    # Both made before either opens: a bad option fails before any pool has workers.
    primary = _new_pool(resolved, pooler, pool_options, others)
    standby = None
    if replica is not None:
        standby_options = {**pool_options, "name": f"{primary.name}-replica"}
        new_standby = functools.partial(_new_pool, replica, pooler, standby_options, others)
        standby = new_standby()
    await primary.open(wait=True, timeout=primary.timeout)
    if standby is not None:
        await standby.open(wait=False)  # a standby that is down must not hold the caller up
        primary.replica = AsyncReadReplica(
            standby,
            functools.partial(_opened_without_waiting, new_standby),
            wait=replica_wait,
            retry_after=replica_retry,
        )
    return primary


def _new_pool(
    dsn: str, pooler: str | None, pool_options: dict[str, Any], others: dict[str, Any]
) -> AsyncPool:
    conninfo, keywords = connection_settings(dsn, pooler, others)
    unopened = AsyncPool(conninfo, kwargs=keywords, open=False, **pool_options)
    unopened.target = describe(dsn)
    return unopened


async def _opened_without_waiting(new_pool: Callable[[], AsyncPool]) -> AsyncPool:
    opened = new_pool()
    await opened.open(wait=False)
    return opened


class AsyncPool(AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """psycopg's pool, whose failures to hand out a connection are the library's.

    ``psycopg_pool.PoolTimeout`` (no connection within the timeout) and
    ``TooManyRequests`` (``max_waiting`` clients already queued) become
    :class:`DatabaseUnavailableError`: with the server's reason when the pool's
    latest attempt to connect failed, else saying that every connection was in use.
    """

    target = "the database"  # user@host:port/dbname, set by async_pool()
    # The hot standby for reads, when async_pool() was given one.
    replica: AsyncReadReplica | None = None
    # How the pool's latest attempt to connect (made by its own workers) ended:
    # None when it worked, or none was made yet.
    _connect_error: psycopg.Error | None = None

    async def _connect(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:
        # psycopg_pool's one place that opens connections. Were it renamed, the
        # messages would lose the server's reason, and nothing else.
        with self._connect_outcome():
            return await super()._connect(timeout)

    @contextlib.contextmanager
    def _connect_outcome(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            self._connect_error = exc
            raise
        self._connect_error = None

    async def run(self, call: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``call`` on one of this pool's connections (the primary's)."""
        async with self.connection() as conn:
            return await call(conn)

    async def run_read(self, call: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """``call``, which only reads, on the replica when there is one and it answers."""
        if self.replica is None:
            return await self.run(call)
        return await self.replica.run(call, fallback=self.run)

    async def close(self, timeout: float = 5.0) -> None:
        if self.replica is not None:
            await self.replica.close()
        await super().close(timeout)

    async def wait(self, timeout: float = 30.0) -> None:
        try:
            await super().wait(timeout)
        except PoolTimeout as exc:
            self._unavailable(exc, timeout)

    async def getconn(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:
        try:
            return await super().getconn(timeout)
        except PoolTimeout as exc:
            self._unavailable(exc, self.timeout if timeout is None else timeout)
        except TooManyRequests as exc:
            raise DatabaseUnavailableError(
                f"no connection to {self.target}: pool {self.name!r} already has "
                f"{self.max_waiting} clients waiting (max_waiting)"
            ) from exc

    def _unavailable(self, exc: PoolTimeout, waited: float) -> NoReturn:
        """Raise the library's error for a wait of ``waited`` seconds that timed out."""
        failed = self._connect_error
        if failed is not None:
            raise DatabaseUnavailableError(
                f"cannot connect to {self.target}: {error_summary(failed)} "
                f"(pool {self.name!r} waited {waited:g} s)"
            ) from failed  # the server's reason; the pool's timeout is the __context__
        # Also a server slower to answer than the wait (connect_timeout is longer).
        raise DatabaseUnavailableError(
            f"no connection to {self.target} within {waited:g} s: all {self.max_size} "
            f"connections of pool {self.name!r} are in use (return them sooner or raise "
            "max_size), or the server is slow to accept more"
        ) from exc
