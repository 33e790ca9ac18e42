"""customer_dal.pool() and connect(): options, the pooler setting, and a pool's failures."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

import customer_dal
from customer_dal import (
    ConfigurationError,
    CustomerRepository,
    DatabaseUnavailableError,
    connect,
    pool,
)

UNREACHABLE = "postgresql://ann:s3cret@127.0.0.1:1/shop"
# psycopg's own default, which customer_dal keeps on a direct connection.
PSYCOPG_PREPARE_THRESHOLD = 5


@pytest.fixture(autouse=True)
def _no_pooler_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a deploy without CUSTOMER_DAL_POOLER would."""
    monkeypatch.delenv("CUSTOMER_DAL_POOLER", raising=False)


def _show(conn: psycopg.Connection[Any], setting: str) -> str:
    [(value,)] = conn.execute(f"SHOW {setting}").fetchall()
    return str(value)


def test_a_pool_serves_repositories_on_autocommit_connections(dsn: str) -> None:
    with pool(dsn, max_size=4) as opened:
        assert isinstance(opened, ConnectionPool)
        assert (opened.min_size, opened.max_size) == (4, 4)
        with opened.connection() as conn:
            assert conn.autocommit
            customers = CustomerRepository(conn)
            ann = customers.create({"name": "Ann Lee", "phone": "555 123 4567"})
        with opened.connection() as conn:
            assert CustomerRepository(conn).get(ann.id) == ann
    assert opened.closed


def test_pool_options_go_to_the_pool_and_the_rest_to_its_connections(dsn: str) -> None:
    with pool(
        dsn,
        min_size=1,
        max_size=2,
        name="shop",
        application_name="cdal-pool-test",
        options="-c statement_timeout=1234",
    ) as opened:
        assert (opened.name, opened.min_size, opened.max_size) == ("shop", 1, 2)
        with opened.connection() as conn:
            assert _show(conn, "application_name") == "cdal-pool-test"
            assert _show(conn, "statement_timeout") == "1234ms"
            assert conn.prepare_threshold == PSYCOPG_PREPARE_THRESHOLD  # direct: prepare
            assert conn.info.get_parameters()["connect_timeout"] == "10"


def test_connect_passes_psycopg_options_through(dsn: str) -> None:
    with connect(
        dsn, application_name="cdal-connect-test", prepare_threshold=2, connect_timeout=3
    ) as conn:
        assert conn.autocommit
        assert conn.prepare_threshold == 2
        assert _show(conn, "application_name") == "cdal-connect-test"
        assert conn.info.get_parameters()["connect_timeout"] == "3"
    with connect(dsn, autocommit=False) as conn:  # a caller's choice the repositories support
        assert not conn.autocommit


def test_connect_keeps_the_default_connect_timeout(dsn: str) -> None:
    with connect(dsn) as conn:
        assert conn.info.get_parameters()["connect_timeout"] == "10"
        assert conn.prepare_threshold == PSYCOPG_PREPARE_THRESHOLD


@pytest.mark.parametrize("spelling", ["transaction", " Transaction "])
def test_a_transaction_pooler_turns_prepared_statements_off(dsn: str, spelling: str) -> None:
    with connect(dsn, pooler=spelling) as conn:
        assert conn.prepare_threshold is None
    with (
        pool(dsn, pooler=spelling, min_size=1) as opened,
        opened.connection() as conn,
    ):
        assert conn.prepare_threshold is None
        assert conn.autocommit


def test_the_environment_sets_the_pooler_and_the_argument_overrides_it(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOMER_DAL_POOLER", "transaction")
    with connect(dsn) as conn:
        assert conn.prepare_threshold is None
    with pool(dsn, min_size=1) as opened, opened.connection() as conn:
        assert conn.prepare_threshold is None
    for direct in ("none", "session"):
        with connect(dsn, pooler=direct) as conn:
            assert conn.prepare_threshold == PSYCOPG_PREPARE_THRESHOLD


def test_prepare_threshold_none_is_accepted_behind_a_transaction_pooler(dsn: str) -> None:
    with connect(dsn, pooler="transaction", prepare_threshold=None) as conn:
        assert conn.prepare_threshold is None


def test_asking_for_prepared_statements_behind_a_transaction_pooler_is_refused() -> None:
    for opener in (connect, pool):
        with pytest.raises(ConfigurationError) as caught:
            opener(UNREACHABLE, pooler="transaction", prepare_threshold=5)
        assert str(caught.value) == (
            "prepare_threshold=5 is unsafe behind a transaction-mode pooler: its server "
            "connections are shared, and so would be the prepared statements; "
            "leave prepare_threshold unset"
        )


@pytest.mark.parametrize("value", ["statement", "pgbouncer", ""])
def test_an_unknown_pooler_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Checked before connecting: the server here is unreachable, and never tried."""
    with pytest.raises(ConfigurationError) as caught:
        connect(UNREACHABLE, pooler=value)
    assert str(caught.value) == (f"pooler must be one of none, session, transaction, not {value!r}")
    monkeypatch.setenv("CUSTOMER_DAL_POOLER", value)
    for opener in (connect, pool):
        with pytest.raises(ConfigurationError) as caught:
            opener(UNREACHABLE)
        assert str(caught.value) == (
            f"CUSTOMER_DAL_POOLER must be one of none, session, transaction, not {value!r}"
        )


def test_an_unknown_option_is_a_configuration_error() -> None:
    for opener in (connect, pool):
        with pytest.raises(ConfigurationError, match=r'^invalid connection option "colour"$'):
            opener(UNREACHABLE, colour="blue")


def test_a_pool_that_cannot_reach_its_server_is_one_library_error() -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as caught:
        pool(UNREACHABLE, min_size=1, timeout=1)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert message.startswith("cannot connect to ann@127.0.0.1:1/shop: connection failed: ")
    assert message.endswith(" waited 1 s)")
    assert "s3cret" not in message
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert isinstance(caught.value.__context__, PoolTimeout)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A DSN whose server accepts TCP connections and never answers (a black hole)."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"postgresql://ann@127.0.0.1:{listener.getsockname()[1]}/shop"


def test_a_pool_whose_server_never_answers_fails_at_connect_timeout(silent_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as caught:
        pool(silent_server, min_size=1, timeout=0.5, connect_timeout=2, name="silent")
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"cannot connect to {customer_dal.db.describe(silent_server)}: "
        "connection timeout expired (pool 'silent' waited 0.5 s)"
    )


def test_an_exhausted_pool_says_every_connection_is_in_use(dsn: str) -> None:
    with (
        pool(dsn, min_size=1, max_size=1, timeout=5, name="tiny") as opened,
        opened.connection(),
    ):
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError) as caught, opened.connection(timeout=0.2):
            pass
        assert time.monotonic() - started < 5
    where = customer_dal.db.describe(dsn)
    assert str(caught.value) == (
        f"no connection to {where} within 0.2 s: all 1 connections of pool 'tiny' are in use "
        "(return them sooner or raise max_size), or the server is slow to accept more"
    )
    assert isinstance(caught.value.__cause__, PoolTimeout)


def test_a_full_waiting_queue_is_one_library_error(dsn: str) -> None:
    with pool(dsn, min_size=1, max_size=1, max_waiting=1, name="queue") as opened:
        held = opened.getconn()
        waiter = threading.Thread(target=lambda: opened.putconn(opened.getconn(timeout=10)))
        waiter.start()
        deadline = time.monotonic() + 10
        while opened.get_stats().get("requests_waiting", 0) < 1:
            assert time.monotonic() < deadline, "the waiter never queued"
            time.sleep(0.01)
        with pytest.raises(
            DatabaseUnavailableError, match=r"pool 'queue' already has 1 clients waiting"
        ):
            opened.getconn()
        opened.putconn(held)
        waiter.join()


def test_a_pool_whose_server_goes_away_names_the_reason(server_dsn: str, dsn: str) -> None:
    dbname = conninfo_to_dict(dsn)["dbname"]
    with pool(dsn, min_size=1, max_size=1, timeout=1) as opened:
        with opened.connection() as conn:
            CustomerRepository(conn).get(1)
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            try:
                _terminate_sessions(admin, dbname)
                # The pool's idle connection was cut: the call on it is lost ...
                with (
                    pytest.raises(DatabaseUnavailableError, match="lost the connection"),
                    opened.connection() as conn,
                ):
                    CustomerRepository(conn).get(1)
                # ... and the pool cannot make another.
                with pytest.raises(DatabaseUnavailableError) as caught, opened.connection():
                    pass
            finally:
                admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
    message = str(caught.value)
    assert message.startswith(f"cannot connect to {customer_dal.db.describe(dsn)}: ")
    assert "is not currently accepting connections" in message
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)


def _terminate_sessions(admin: psycopg.Connection[Any], dbname: str) -> None:
    """Cut every session on ``dbname`` and wait until they are gone."""
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [dbname]
    )
    deadline = time.monotonic() + 10
    while admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [dbname]
    ).fetchone() != (0,):
        assert time.monotonic() < deadline, f"the sessions on {dbname} outlived termination"
        time.sleep(0.01)
