"""Through a real PgBouncer in transaction mode (see tests/pgbouncer.py).

What issue 9 found broken there, shown fixed by ``CUSTOMER_DAL_POOLER=transaction``
and, for the record, still broken without it: psycopg's prepared statements
collide across clients that share a server connection, and can even run another
client's statement; migrations leave session state on pooled connections.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from contextlib import AbstractContextManager, closing
from typing import Any

import psycopg
import pytest

from customer_dal import (
    AsyncCustomerRepository,
    Customer,
    CustomerRepository,
    MigrationError,
    async_pool,
    connect,
    migrate,
    migration_status,
    pool,
    rollback,
)
from customer_dal.db import describe

from .pgbouncer import (  # noqa: F401 - the fixture
    CLEAN,
    POOL_SIZE,
    Bouncer,
    pgbouncer_fixture,
    pins,
    run_customer_dal,
    server_connections,
)
from .shipped import states
from .threads import run_together

THREADS = 12
CALLS = 200
REPEATS = 10  # identical calls in a row: psycopg prepares a statement after 5
KINDS = ("get", "get_by_phone", "search", "list", "create", "update", "soft_delete")
BLOCKS = CALLS // REPEATS
CREATE_BLOCKS = sum(KINDS[block % len(KINDS)] == "create" for block in range(BLOCKS))
DELETE_BLOCKS = sum(KINDS[block % len(KINDS)] == "soft_delete" for block in range(BLOCKS))
REFUSAL = (
    "migrations need a session of their own: run them against the server directly, "
    "not through a transaction-mode pooler (CUSTOMER_DAL_POOLER=transaction)"
)

Connections = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


@pytest.fixture(autouse=True)
def _no_pooler_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTOMER_DAL_POOLER", raising=False)


@pytest.fixture
def through(pgbouncer: Bouncer, dsn: str) -> str:
    """The test's migrated database, reached through PgBouncer."""
    return pgbouncer.through(dsn)


# -- many clients, few server connections -------------------------------------------


class _Worker:
    """One client's 200 calls: blocks of 10 identical calls, each block on a
    connection of its own (a new one, or one from a pool)."""

    mine: Customer  # the worker's own customer, which it reads and updates

    def __init__(self, index: int, connections: Connections) -> None:
        self.index = index
        self.connections = connections
        self.serial = itertools.count()
        self.created: list[Customer] = []
        self.errors: list[BaseException] = []

    def run(self) -> list[BaseException]:
        with self.connections() as conn:
            self.mine = CustomerRepository(conn).create(
                {"name": f"Worker {self.index}", "phone": f"555 999 {self.index:04d}"}
            )
        for block in range(BLOCKS):
            with self.connections() as conn:
                customers = CustomerRepository(conn)
                kind = KINDS[block % len(KINDS)]
                if kind == "create":
                    self.created = []
                for _ in range(REPEATS):
                    try:
                        self._call(customers, kind)
                    except Exception as exc:
                        self.errors.append(exc)
        return self.errors

    def _call(self, customers: CustomerRepository, kind: str) -> None:
        n = next(self.serial)
        if kind == "get":
            customers.get(self.mine.id)
        elif kind == "get_by_phone":
            customers.get_by_phone(self.mine.phone)
        elif kind == "search":
            customers.search(f"Worker {self.index}")
        elif kind == "list":
            customers.list(per_page=5)
        elif kind == "create":
            phone = f"555 {self.index:03d} {n:04d}"
            self.created.append(customers.create({"name": f"W{self.index} {n}", "phone": phone}))
        elif kind == "update":
            customers.update(self.mine.id, {"notes": f"call {n}"})
        else:
            customers.soft_delete(self.created[n % REPEATS].id)


def _many_clients(through: str, **options: Any) -> list[BaseException]:
    """12 clients x 200 calls through PgBouncer: half open a connection per block
    (as CLI commands do), half take one from a shared pool."""
    with pool(through, min_size=1, max_size=THREADS // 2, **options) as shared:

        def connections(index: int) -> Connections:
            if index % 2:
                return shared.connection
            return lambda: closing(connect(through, **options))

        outcomes = run_together(lambda i: _Worker(i, connections(i)).run(), THREADS)
    return [
        error
        for outcome in outcomes
        for error in (outcome if isinstance(outcome, list) else [outcome])
    ]


def test_many_clients_make_no_errors_with_the_pooler_setting(
    pgbouncer: Bouncer, through: str, dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOMER_DAL_POOLER", "transaction")
    errors = _many_clients(through)
    assert errors == [], f"{len(errors)} errors, the first: {errors[:3]}"
    with psycopg.connect(dsn) as direct:  # the calls did their work
        [(total, inactive)] = direct.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT is_active) FROM customers"
        ).fetchall()
        [(sessions,)] = direct.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert total == THREADS * (1 + CREATE_BLOCKS * REPEATS)
    assert inactive == THREADS * DELETE_BLOCKS * REPEATS
    assert sessions <= POOL_SIZE  # 12 clients and their pool shared 2 server connections
    assert server_connections(pgbouncer, dsn) == [CLEAN] * POOL_SIZE


@pytest.mark.asyncio
async def test_async_tasks_make_no_errors_with_the_pooler_setting(
    pgbouncer: Bouncer, through: str, dsn: str
) -> None:
    """The async API through PgBouncer: 12 tasks share an async pool of 6 over PgBouncer's
    2 server connections; every call works, every write lands, and the server connections
    are left as clean as the sync API leaves them."""

    async def client(shared: Any, index: int) -> list[BaseException]:
        errors: list[BaseException] = []
        async with shared.connection() as conn:
            mine = await AsyncCustomerRepository(conn).create(
                {"name": f"Task {index}", "phone": f"555 888 {index:04d}"}
            )
        calls = [
            lambda customers, n: customers.get(mine.id),
            lambda customers, n: customers.search(f"Task {index}"),
            lambda customers, n: customers.update(mine.id, {"notes": f"call {n}"}),
        ]
        # In an order of its own, as real clients' calls come.
        calls = calls[index % 3 :] + calls[: index % 3]
        for n in range(REPEATS * 3):
            async with shared.connection() as conn:
                customers = AsyncCustomerRepository(conn)
                for call in calls:
                    try:
                        await call(customers, n)
                    except Exception as exc:
                        errors.append(exc)
        return errors

    async with await async_pool(
        through, min_size=1, max_size=THREADS // 2, pooler="transaction"
    ) as shared:
        outcomes = await asyncio.gather(*(client(shared, i) for i in range(THREADS)))
    errors = [error for errors in outcomes for error in errors]
    assert errors == [], f"{len(errors)} errors, the first: {errors[:3]}"
    with psycopg.connect(dsn) as direct:
        [(notes,)] = direct.execute(
            "SELECT count(*) FROM customers WHERE notes = %s", [f"call {REPEATS * 3 - 1}"]
        ).fetchall()
    assert notes == THREADS
    assert server_connections(pgbouncer, dsn) == [CLEAN] * POOL_SIZE


def test_without_the_setting_prepared_statements_fail_there(through: str) -> None:
    """For the record: psycopg's default (prepare after 5 runs) fails through PgBouncer
    in transaction mode, as issue 9 found (about a fifth of the calls)."""
    errors = _many_clients(through)
    assert any("prepared statement" in str(error) for error in errors), errors[:3]


# -- another client's prepared statement ----------------------------------------------


def _run_wrong_statement_scenario(through: str, dsn: str, pooler: str) -> dict[str, Any]:
    """Issue 9's scenario: client A soft-deletes on server connection 1 until psycopg
    prepares it (as ``_pg3_0``); client B restores on server connection 2 until its
    restore is prepared under the same name; then B's next restore meets server
    connection 1."""
    with connect(dsn) as direct:
        customers = CustomerRepository(direct)
        ann, bo = (
            customers.create({"name": name, "phone": f"555 000 000{n}"})
            for n, name in enumerate(["Ann", "Bo"])
        )
    with (
        pins(through) as (one, two),
        closing(connect(through, pooler=pooler)) as a,
        closing(connect(through, pooler=pooler)) as b,
    ):
        one.free()  # A can only get server connection 1
        for _ in range(REPEATS):
            CustomerRepository(a).soft_delete(bo.id)
        assert one.hold() == one.pid
        two.free()  # B can only get server connection 2
        for _ in range(REPEATS):
            CustomerRepository(b).restore(bo.id)
        assert two.hold() == two.pid
        one.free()  # and now only server connection 1
        try:
            outcome: Any = CustomerRepository(b).restore(ann.id)
        except Exception as exc:
            outcome = exc
        assert one.hold() == one.pid
        prepared = one.prepared() + two.prepared()
    with connect(dsn) as direct:
        ann_now = CustomerRepository(direct).get(ann.id, include_inactive=True)
    assert ann_now is not None
    return {"restore": outcome, "ann_active": ann_now.is_active, "prepared": prepared}


def test_a_client_never_runs_another_clients_statement_with_the_pooler_setting(
    through: str, dsn: str
) -> None:
    seen = _run_wrong_statement_scenario(through, dsn, "transaction")
    assert seen == {"restore": None, "ann_active": True, "prepared": []}


def test_without_the_setting_a_client_runs_another_clients_statement(
    through: str, dsn: str
) -> None:
    """For the record, issue 9's worst case: B's restore(Ann) ran A's prepared
    soft_delete, which committed (Ann is soft-deleted), and B saw only pydantic's
    complaint about the row shape."""
    seen = _run_wrong_statement_scenario(through, dsn, "none")
    assert type(seen["restore"]).__name__ == "ValidationError"
    assert seen["ann_active"] is False
    assert [statement.split()[0] for statement in seen["prepared"]] == ["UPDATE", "WITH"]


# -- migrations and status ---------------------------------------------------------


def test_migrations_refuse_the_pooler_setting_and_leave_nothing_behind(
    pgbouncer: Bouncer, dsn: str, empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrated, empty = pgbouncer.through(dsn), pgbouncer.through(empty_dsn)
    monkeypatch.setenv("CUSTOMER_DAL_POOLER", "transaction")
    for run, target in ((migrate, empty), (rollback, migrated)):
        with pytest.raises(MigrationError) as caught:
            run(target)
        assert str(caught.value) == REFUSAL
    # The command: one line, after the one naming the database.
    for command, target in itertools.product(
        (["migrate"], ["rollback"], ["rollback", "--steps", "3"]), (migrated, empty)
    ):
        done = run_customer_dal(target, *command)
        assert (done.returncode, done.stdout, done.stderr.splitlines()) == (
            1,
            "",
            [f"database: {describe(target)}", f"customer-dal: error: {REFUSAL}"],
        )
    # Status only reads: it works through the pooler.
    assert migration_status(migrated) == states("applied")
    assert migration_status(empty) == states("pending")
    for target in (dsn, empty_dsn):
        assert server_connections(pgbouncer, target) == [CLEAN] * POOL_SIZE


def test_an_undeclared_pooler_is_detected_before_the_lock_is_taken(
    pgbouncer: Bouncer, dsn: str, empty_dsn: str
) -> None:
    """Without CUSTOMER_DAL_POOLER, migrate and rollback still see PgBouncer, by the
    backend pid it makes up, and refuse before any session state exists."""
    migrated, empty = pgbouncer.through(dsn), pgbouncer.through(empty_dsn)
    for run, target in ((migrate, empty), (rollback, migrated)):
        with pytest.raises(MigrationError) as caught:
            run(target)
        assert str(caught.value) == (
            f"{describe(target)} is reached through a connection pooler (the server's "
            "backend pid is not the one the connection was given), and migrations need a "
            "session of their own: run them against the server directly, or set "
            "CUSTOMER_DAL_POOLER=session if the pooler keeps each client on one server "
            "connection"
        )
    for target in (dsn, empty_dsn):
        assert server_connections(pgbouncer, target) == [CLEAN] * POOL_SIZE
    assert migration_status(migrated) == states("applied")
    assert migration_status(empty) == states("pending")  # no bookkeeping was created
