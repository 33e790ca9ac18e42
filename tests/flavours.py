"""The repository suite, once per flavour: the sync API, and the async API driven from
sync-written tests.

A test module that should run against both imports :func:`each_flavour` (a fixture
named ``flavour``); elsewhere ``flavour`` is the sync API alone (see conftest). A
test then opens connections and builds repositories through its ``flavour``:
for the async API each connection is a psycopg ``AsyncConnection`` living on one
event loop in a thread of its own, and :class:`Blocking` runs each coroutine its
methods return on that loop and waits for the result. Exceptions arrive as the
async code raised them. Concurrency and cancellation are tested natively async
elsewhere (test_concurrency's races, test_async): this adapter is for the
behaviour both flavours share.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import pytest

import customer_dal

T = TypeVar("T")
_POOLED = (customer_dal.AsyncPooledCustomerRepository, customer_dal.AsyncPooledUserRepository)


class LoopThread:
    """An asyncio event loop running in a daemon thread until :meth:`stop`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Blocking:
    """``target`` (an async connection, cursor, repository, ...) with blocking methods."""

    def __init__(self, target: Any, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        @functools.wraps(value)
        def blocking(*args: Any, **kwargs: Any) -> Any:
            return self._wrap(value(*args, **kwargs))

        return blocking

    def _wrap(self, result: Any) -> Any:
        if inspect.isawaitable(result):
            result = self._loop.run(_awaited(result))
        if isinstance(result, psycopg.AsyncConnection | psycopg.AsyncCursor):
            return Blocking(result, self._loop)
        if hasattr(result, "__aenter__"):  # conn.transaction(), conn.pipeline()
            return Blocking(result, self._loop)
        if isinstance(result, _POOLED):  # on_primary()
            return Blocking(result, self._loop)
        return result

    def __enter__(self) -> Any:
        entered = self._loop.run(_awaited(self._target.__aenter__()))
        return self if entered is self._target else entered

    def __exit__(self, *exc_info: Any) -> Any:
        return self._loop.run(_awaited(self._target.__aexit__(*exc_info)))


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


@dataclass(frozen=True)
class Flavour:
    """How a test opens connections and builds repositories in one flavour."""

    name: str
    loop: LoopThread | None = None

    @property
    def is_async(self) -> bool:
        return self.loop is not None

    def _blocking(self, make: Callable[[], Awaitable[Any]]) -> Any:
        assert self.loop is not None
        return Blocking(self.loop.run(_awaited(make())), self.loop)

    def connect(self, dsn: str, **options: Any) -> Any:
        """``customer_dal.connect()`` or ``customer_dal.async_connect()``."""
        if self.loop is None:
            return customer_dal.connect(dsn, **options)
        return self._blocking(lambda: customer_dal.async_connect(dsn, **options))

    def psycopg_connect(self, dsn: str, **options: Any) -> Any:
        """``psycopg.connect()`` or ``psycopg.AsyncConnection.connect()``."""
        if self.loop is None:
            return psycopg.connect(dsn, **options)
        return self._blocking(lambda: psycopg.AsyncConnection.connect(dsn, **options))

    def _repository(self, sync: Any, asynchronous: Any, source: Any) -> Any:
        """``sync(source)``, or ``asynchronous`` on the async object behind ``source``."""
        if self.loop is None:
            return sync(source)
        return Blocking(asynchronous(source._target), self.loop)

    def customers(self, conn: Any) -> Any:
        return self._repository(
            customer_dal.CustomerRepository, customer_dal.AsyncCustomerRepository, conn
        )

    def users(self, conn: Any) -> Any:
        return self._repository(customer_dal.UserRepository, customer_dal.AsyncUserRepository, conn)

    def pool(self, dsn: str, **options: Any) -> Any:
        """``customer_dal.pool()`` or ``customer_dal.async_pool()``."""
        if self.loop is None:
            return customer_dal.pool(dsn, **options)
        return self._blocking(lambda: customer_dal.async_pool(dsn, **options))

    def pooled_customers(self, pool: Any) -> Any:
        return self._repository(
            customer_dal.PooledCustomerRepository, customer_dal.AsyncPooledCustomerRepository, pool
        )

    def pooled_users(self, pool: Any) -> Any:
        return self._repository(
            customer_dal.PooledUserRepository, customer_dal.AsyncPooledUserRepository, pool
        )

    def ask(self, pool: Any, query: str, *, read: bool) -> Any:
        """One value from ``query``, through the pool's ``run_read`` (or ``run``)."""
        if self.loop is None:
            run = pool.run_read if read else pool.run
            return run(lambda conn: conn.execute(query).fetchone()[0])

        async def value(conn: psycopg.AsyncConnection[Any]) -> Any:
            row = await (await conn.execute(query)).fetchone()
            return row[0] if row else None

        target = pool._target
        return self.loop.run(target.run_read(value) if read else target.run(value))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of the async flavour's own (a race between tasks) on its loop."""
        assert self.loop is not None
        return self.loop.run(coroutine)


SYNC = Flavour("sync")


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.stop()


@pytest.fixture(name="flavour", params=["sync", "async"])
def each_flavour(request: pytest.FixtureRequest) -> Flavour:
    """Every test that uses it runs once per flavour."""
    if request.param == "sync":
        return SYNC
    return Flavour("async", request.getfixturevalue("loop_thread"))
