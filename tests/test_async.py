"""What only the async API has: asyncio tasks sharing a connection, cancelled calls, the
connection check, and async_connect()/async_pool() failing as connect()/pool() do.

Everything the two APIs share is tested once per flavour by the repository suite
(tests/flavours.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from psycopg.pq import TransactionStatus
from psycopg_pool import AsyncConnectionPool

import customer_dal
from customer_dal import (
    AsyncCustomerRepository,
    AsyncUserRepository,
    ConfigurationError,
    CustomerRepository,
    DatabaseUnavailableError,
    UserRepository,
    async_connect,
    async_pool,
    connect,
    pool,
)

from .locks import row_locked, table_locked

pytestmark = pytest.mark.asyncio

ANN = {"name": "Ann Lee", "phone": "555-123-4567"}
UNREACHABLE = "postgresql://ann:s3cret@127.0.0.1:1/shop"
# Long enough for the call to be waiting on the server, short enough for a test.
CANCEL_AFTER = 0.3


@pytest.fixture(autouse=True)
def _no_pooler_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTOMER_DAL_POOLER", raising=False)


@pytest_asyncio.fixture
async def aconn(dsn: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await async_connect(dsn) as connection:
        yield connection


# ---- the connection check ----------------------------------------------------------------


async def test_a_repository_refuses_the_other_flavours_connection(
    conn: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    cases = [
        (AsyncCustomerRepository, conn, "AsyncCustomerRepository needs a psycopg.AsyncConnection, "
         "not a psycopg.Connection: use CustomerRepository instead"),
        (AsyncUserRepository, conn, "AsyncUserRepository needs a psycopg.AsyncConnection, "
         "not a psycopg.Connection: use UserRepository instead"),
        (CustomerRepository, aconn, "CustomerRepository needs a psycopg.Connection, "
         "not a psycopg.AsyncConnection: use AsyncCustomerRepository instead"),
        (UserRepository, aconn, "UserRepository needs a psycopg.Connection, "
         "not a psycopg.AsyncConnection: use AsyncUserRepository instead"),
        (AsyncCustomerRepository, "postgresql://", "AsyncCustomerRepository needs a "
         "psycopg.AsyncConnection, not str"),
    ]  # fmt: skip
    for repository, connection, message in cases:
        with pytest.raises(TypeError) as caught:
            repository(connection)
        assert str(caught.value) == message


# ---- tasks sharing one connection --------------------------------------------------------


async def test_tasks_sharing_a_repository_each_read_their_own_rows(
    aconn: psycopg.AsyncConnection[Any],
) -> None:
    """Each async call has its own cursor: 60 interleaved reads on one connection."""
    customers = AsyncCustomerRepository(aconn)
    created = [
        await customers.create({"name": f"Racer {i}", "phone": f"555-000-{i:04d}"})
        for i in range(6)
    ]

    async def read(index: int) -> bool:
        wanted = created[index % len(created)]
        by_id, by_phone = await asyncio.gather(
            customers.get(wanted.id), customers.get_by_phone(wanted.phone)
        )
        return by_id == by_phone == wanted

    assert await asyncio.gather(*(read(i) for i in range(60))) == [True] * 60


# ---- cancellation ------------------------------------------------------------------------


def _notes(conn: psycopg.Connection[Any], customer_id: int) -> Any:
    [(notes,)] = conn.execute("SELECT notes FROM customers WHERE id = %s", [customer_id])
    return notes


def _backend_state(conn: psycopg.Connection[Any], pid: int) -> Any:
    [(state,)] = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", [pid])
    return state


SEARCH_SETTINGS = ["enable_seqscan", "enable_indexscan", "jit", "plan_cache_mode"]


async def _settings(aconn: psycopg.AsyncConnection[Any]) -> list[Any]:
    cursor = await aconn.execute(
        "SELECT name, setting = reset_val FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
        [SEARCH_SETTINGS],
    )
    return await cursor.fetchall()


async def test_a_write_cancelled_while_it_waits_for_a_row_lock_is_undone_and_the_pool_reuses_its_connection(  # noqa: E501
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    async with await async_pool(dsn, min_size=1, max_size=1) as opened:
        async with opened.connection() as aconn:
            ann = await AsyncCustomerRepository(aconn).create(ANN)
            pid = aconn.info.backend_pid
        with row_locked(dsn, ann.id):
            async with opened.connection() as aconn:
                update = AsyncCustomerRepository(aconn).update(ann.id, {"notes": "half-done?"})
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(update, CANCEL_AFTER)
                # The server stopped the statement before the task saw the cancellation.
                assert aconn.pgconn.transaction_status == TransactionStatus.IDLE
                assert _backend_state(conn, pid) == "idle"
        assert _notes(conn, ann.id) is None  # the lock is free: nothing is left to apply
        async with opened.connection() as aconn:  # the same connection, as good as new
            assert aconn.info.backend_pid == pid
            changed = await AsyncCustomerRepository(aconn).update(ann.id, {"notes": "later"})
            assert changed is not None
    assert _notes(conn, ann.id) == "later"


async def test_a_search_cancelled_while_the_table_is_locked_leaves_nothing_behind(
    dsn: str, conn: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    customers = AsyncCustomerRepository(aconn)
    ann = await customers.create(ANN)
    before = await _settings(aconn)
    with table_locked(dsn):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(customers.search("ann"), CANCEL_AFTER)
        assert aconn.pgconn.transaction_status == TransactionStatus.IDLE
        assert _backend_state(conn, aconn.info.backend_pid) == "idle"
    assert await _settings(aconn) == before  # its SET LOCALs went with its transaction
    assert await customers.search("ann") == [ann]


async def test_a_call_cancelled_inside_the_callers_transaction_leaves_it_usable(
    dsn: str, conn: psycopg.Connection[Any], aconn: psycopg.AsyncConnection[Any]
) -> None:
    customers = AsyncCustomerRepository(aconn)
    ann = await customers.create(ANN)
    async with aconn.transaction():
        bo = await customers.create({"name": "Bo", "phone": "555-999-0000"})
        with row_locked(dsn, ann.id), pytest.raises(TimeoutError):
            await asyncio.wait_for(customers.soft_delete(ann.id), CANCEL_AFTER)
        assert aconn.pgconn.transaction_status == TransactionStatus.INTRANS  # not failed
        await customers.update(bo.id, {"notes": "kept"})
    assert _notes(conn, bo.id) == "kept"
    [(active,)] = conn.execute("SELECT is_active FROM customers WHERE id = %s", [ann.id])
    assert active


async def test_without_autocommit_a_cancelled_call_leaves_the_transaction_usable(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    async with await psycopg.AsyncConnection.connect(dsn) as manual:  # not autocommit
        customers = AsyncCustomerRepository(manual)
        ann = await customers.create(ANN)
        await manual.commit()
        bo = await customers.create({"name": "Bo", "phone": "555-999-0000"})
        with row_locked(dsn, ann.id), pytest.raises(TimeoutError):
            await asyncio.wait_for(customers.update(ann.id, {"notes": "no"}), CANCEL_AFTER)
        assert manual.pgconn.transaction_status == TransactionStatus.INTRANS
        assert await customers.get(bo.id) == bo
        await manual.commit()
    assert _notes(conn, ann.id) is None
    assert _notes(conn, bo.id) is None


# ---- async_connect() and async_pool() ----------------------------------------------------


async def test_async_connect_configures_its_connection_as_connect_does(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await async_connect(dsn, application_name="cdal-async") as aconn:
        assert aconn.autocommit
        assert aconn.prepare_threshold == 5  # psycopg's default, on a direct connection
        assert aconn.info.get_parameters()["connect_timeout"] == "10"
        assert aconn.info.parameter_status("application_name") == "cdal-async"
    monkeypatch.setenv("CUSTOMER_DAL_POOLER", "transaction")
    async with await async_connect(dsn) as aconn:
        assert aconn.prepare_threshold is None


async def test_an_async_pool_is_configured_as_pool_is(dsn: str) -> None:
    async with await async_pool(
        dsn, min_size=1, max_size=2, name="shop", pooler="transaction"
    ) as opened:
        assert isinstance(opened, AsyncConnectionPool)
        assert (opened.name, opened.min_size, opened.max_size) == ("shop", 1, 2)
        async with opened.connection() as aconn:
            assert aconn.autocommit
            assert aconn.prepare_threshold is None
            assert aconn.info.get_parameters()["connect_timeout"] == "10"
            ann = await AsyncCustomerRepository(aconn).create(ANN)
        async with opened.connection() as aconn:
            assert await AsyncCustomerRepository(aconn).get(ann.id) == ann
    assert opened.closed


def _sync_error(call: Any) -> str:
    """The message of the library error the sync API raises for ``call``."""
    with pytest.raises((DatabaseUnavailableError, ConfigurationError)) as caught:
        call()
    return str(caught.value)


async def test_failing_to_connect_says_what_the_sync_api_says() -> None:
    with pytest.raises(DatabaseUnavailableError) as caught:
        await async_connect(UNREACHABLE)
    assert str(caught.value) == _sync_error(lambda: connect(UNREACHABLE))
    assert "s3cret" not in str(caught.value)
    with pytest.raises(DatabaseUnavailableError) as caught:
        await async_pool(UNREACHABLE, min_size=1, timeout=1, name="p")
    assert str(caught.value) == _sync_error(
        lambda: pool(UNREACHABLE, min_size=1, timeout=1, name="p")
    )
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    for option in ({"colour": "blue"}, {"pooler": "statement"}):
        with pytest.raises(ConfigurationError) as config:
            await async_pool(UNREACHABLE, **option)
        assert str(config.value) == _sync_error(lambda option=option: pool(UNREACHABLE, **option))


async def test_an_exhausted_async_pool_says_what_pool_says(dsn: str) -> None:
    with (
        pool(dsn, min_size=1, max_size=1, timeout=1, name="tiny") as sync_pool,
        sync_pool.connection(),
    ):
        expected = _sync_error(lambda: sync_pool.getconn(timeout=0.2))
    async with (
        await async_pool(dsn, min_size=1, max_size=1, timeout=1, name="tiny") as opened,
        opened.connection(),
    ):
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError) as caught:
            await opened.getconn(timeout=0.2)
        assert time.monotonic() - started < 5
        with pytest.raises(DatabaseUnavailableError) as default_wait:
            await opened.getconn()  # the pool's own timeout, without an argument
    assert str(caught.value) == expected
    assert "within 1 s" in str(default_wait.value)


async def test_a_full_waiting_queue_says_what_pool_says(dsn: str) -> None:
    async with await async_pool(dsn, min_size=1, max_size=1, max_waiting=1, name="queue") as opened:
        held = await opened.getconn()
        waiter = asyncio.create_task(opened.getconn(timeout=10))
        while opened.get_stats().get("requests_waiting", 0) < 1:
            await asyncio.sleep(0.01)
        with pytest.raises(DatabaseUnavailableError) as caught:
            await opened.getconn()
        await opened.putconn(held)
        await opened.putconn(await waiter)
    assert str(caught.value) == (
        f"no connection to {customer_dal.db.describe(dsn)}: pool 'queue' already has "
        "1 clients waiting (max_waiting)"
    )
