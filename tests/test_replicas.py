"""Read replicas: a pool's repositories read from a real streaming standby, write to
the primary, read from the primary when asked to (or when the standby is away), and
say so once per outage; the sync and the async API alike."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import customer_dal
from customer_dal import (
    ConfigurationError,
    CustomerRepository,
    DatabaseUnavailableError,
    PooledCustomerRepository,
    PooledUserRepository,
    cli,
    migrate,
)
from customer_dal.db import describe, with_database

from .flavours import Flavour, each_flavour  # noqa: F401 - the fixture
from .servers import ReplicaPair, replica_pair  # noqa: F401 - the fixture

_phones = itertools.count(5_550_000_000)
_REPLICA_LOGGER = "customer_dal.replicas"


def _phone() -> str:
    return str(next(_phones))


@pytest.fixture(scope="module")
def databases(replica_pair: ReplicaPair) -> Iterator[tuple[str, str]]:  # noqa: F811
    """A migrated database on the primary: its DSN there and on the standby."""
    name = f"cdal_replicas_{os.getpid()}"
    with psycopg.connect(replica_pair.primary_dsn, autocommit=True) as primary:
        primary.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    primary_dsn = with_database(replica_pair.primary_dsn, name)
    migrate(primary_dsn)
    replica_pair.wait_for_replay()
    yield primary_dsn, with_database(replica_pair.replica_dsn, name)
    with psycopg.connect(replica_pair.primary_dsn, autocommit=True) as primary:
        primary.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def routed(databases: tuple[str, str], flavour: Flavour) -> Iterator[Any]:
    """A pool with the standby, of the test's flavour."""
    primary, replica = databases
    with flavour.pool(
        primary, replica_dsn=replica, min_size=1, max_size=2, replica_wait=1, replica_retry=0.2
    ) as opened:
        yield opened


@pytest.fixture
def lagging(replica_pair: ReplicaPair) -> Iterator[ReplicaPair]:  # noqa: F811
    """The standby, caught up and then frozen: it sees nothing written from here on."""
    replica_pair.wait_for_replay()
    replica_pair.pause_replay()
    yield replica_pair
    replica_pair.resume_replay()
    replica_pair.wait_for_replay()


def _in_recovery(conn: psycopg.Connection[Any]) -> bool:
    [(answer,)] = conn.execute("SELECT pg_is_in_recovery()").fetchall()
    return bool(answer)


_RECOVERY = "SELECT pg_is_in_recovery()"


def test_reads_go_to_the_standby_and_writes_to_the_primary(routed: Any, flavour: Flavour) -> None:
    assert flavour.ask(routed, _RECOVERY, read=True) is True
    assert flavour.ask(routed, _RECOVERY, read=False) is False
    assert routed.replica is not None
    assert routed.replica.pool.name == f"{routed.name}-replica"


def test_each_read_only_call_reads_the_standby_and_on_primary_reads_the_primary(
    routed: Any, flavour: Flavour, lagging: ReplicaPair
) -> None:
    customers = flavour.pooled_customers(routed)
    phone = _phone()
    # A write on the standby would fail (read-only): create goes to the primary.
    name = f"Zebediah Lagwell {flavour.name}"  # the module's database serves both flavours
    ann = customers.create({"name": name, "phone": phone})

    # The frozen standby has not seen her: every read-only call ran there.
    assert customers.get(ann.id) is None
    assert customers.get_by_phone(phone) is None
    assert customers.search(name) == []
    assert ann.id not in {c.id for c in customers.list(per_page=100).customers}
    on_standby = customers.count_active()

    # Read-your-writes: the primary has her.
    primary = customers.on_primary()
    assert primary.get(ann.id) == ann
    assert primary.get_by_phone(phone) == ann
    assert primary.search(name) == [ann]
    assert primary.count_active() == on_standby + 1


def test_writes_go_to_the_primary(
    routed: Any,
    flavour: Flavour,
    replica_pair: ReplicaPair,  # noqa: F811
) -> None:
    customers = flavour.pooled_customers(routed)
    ann = customers.create({"name": "Ann Writer", "phone": _phone()})
    changed = customers.update(ann.id, {"notes": "moved"}, expected_updated_at=ann.updated_at)
    assert changed is not None
    assert changed.notes == "moved"
    assert customers.soft_delete(ann.id) is True
    restored = customers.restore(ann.id)
    assert restored is not None
    assert restored.is_active

    replica_pair.wait_for_replay()
    assert customers.get(ann.id) == restored  # and the standby caught up


def test_users_are_routed_too(routed: Any, flavour: Flavour, lagging: ReplicaPair) -> None:
    users = flavour.pooled_users(routed)
    clerk = users.create("Clerk Lag")
    assert users.get(clerk.id) is None  # the standby is behind
    assert users.on_primary().get(clerk.id) == clerk


def test_calls_in_a_transaction_run_on_the_primary(databases: tuple[str, str]) -> None:
    primary, replica = databases
    with (
        customer_dal.pool(primary, replica_dsn=replica, min_size=1) as routed,
        routed.connection() as conn,
        conn.transaction(),
    ):
        customers = CustomerRepository(conn)
        ann = customers.create({"name": "Ann Atomic", "phone": _phone()})
        assert customers.get(ann.id) == ann  # read inside the transaction: the primary
        assert _in_recovery(conn) is False


def test_reads_fall_back_to_the_primary_with_one_warning_per_outage(
    routed: Any,
    flavour: Flavour,
    replica_pair: ReplicaPair,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    customers = flavour.pooled_customers(routed)
    ann = customers.create({"name": f"Ann Outage {flavour.name}", "phone": _phone()})
    replica_pair.wait_for_replay()
    caplog.set_level(logging.INFO, logger=_REPLICA_LOGGER)

    replica_pair.stop_standby()
    try:
        for _ in range(5):  # the first read finds the pooled connection cut
            assert customers.get(ann.id) == ann
        assert flavour.ask(routed, _RECOVERY, read=True) is False
        time.sleep(0.3)  # past replica_retry: one read tries the standby, and fails
        assert customers.search(f"Outage {flavour.name}") == [ann]
    finally:
        replica_pair.start_standby()
    ours = [r for r in caplog.records if r.name == _REPLICA_LOGGER]
    warnings = [r for r in ours if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "is unreachable, reads go to the primary" in warnings[0].getMessage()
    assert "-replica" not in warnings[0].getMessage()  # the server, not the pool's name

    time.sleep(0.3)
    assert flavour.ask(routed, _RECOVERY, read=True) is True  # back on the standby
    ours = [r for r in caplog.records if r.name == _REPLICA_LOGGER]
    assert ours[-1].levelno == logging.INFO
    assert ours[-1].getMessage().endswith("answers again; reads go to it")

    # A second outage is a second warning.
    caplog.clear()
    replica_pair.stop_standby()
    try:
        assert customers.get(ann.id) == ann
    finally:
        replica_pair.start_standby()
    ours = [r for r in caplog.records if r.name == _REPLICA_LOGGER]
    assert [r.levelno for r in ours] == [logging.WARNING]


def test_a_standby_down_from_the_start_does_not_stop_the_pool(
    databases: tuple[str, str],
    flavour: Flavour,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    primary, _ = databases
    nowhere = f"postgresql://postgres@/postgres?host={tmp_path}&port=1"
    caplog.set_level(logging.WARNING, logger=_REPLICA_LOGGER)
    with flavour.pool(
        primary, replica_dsn=nowhere, min_size=1, replica_wait=0.5, replica_retry=60
    ) as opened:
        customers = flavour.pooled_customers(opened)
        ann = customers.create({"name": "Ann Nowhere", "phone": _phone()})
        started = time.monotonic()
        assert customers.get(ann.id) == ann
        assert customers.get(ann.id) == ann  # in the outage: no second wait
        assert time.monotonic() - started < 5
    [warning] = [r.getMessage() for r in caplog.records if r.name == _REPLICA_LOGGER]
    assert f"read replica postgres@{tmp_path}:1/postgres is unreachable" in warning
    assert "No such file or directory" in warning


def test_the_replica_comes_from_the_environment(
    databases: tuple[str, str], flavour: Flavour, monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, replica = databases
    monkeypatch.setenv("DATABASE_REPLICA_URL", replica)
    with flavour.pool(primary, min_size=1) as opened:
        assert flavour.ask(opened, _RECOVERY, read=True) is True
    monkeypatch.setenv("DATABASE_REPLICA_URL", " ")
    with pytest.raises(ConfigurationError, match="DATABASE_REPLICA_URL is set but empty"):
        flavour.pool(primary)


def test_without_a_replica_reads_go_to_the_primary(
    databases: tuple[str, str], flavour: Flavour
) -> None:
    primary, _ = databases
    with flavour.pool(primary, min_size=1) as opened:
        assert opened.replica is None
        customers = flavour.pooled_customers(opened)
        ann = customers.create({"name": "Ann Single", "phone": _phone()})
        assert customers.get(ann.id) == ann


def test_a_pooled_repository_needs_a_pool(databases: tuple[str, str]) -> None:
    primary, _ = databases
    with psycopg.connect(primary) as conn:
        with pytest.raises(TypeError, match="not Connection; for one connection use Customer"):
            PooledCustomerRepository(conn)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="use UserRepository"):
            PooledUserRepository(conn)  # type: ignore[arg-type]


def test_pooled_methods_keep_their_names_and_documentation() -> None:
    assert PooledCustomerRepository.search.__doc__ == CustomerRepository.search.__doc__
    assert PooledCustomerRepository.get.__name__ == "get"
    pooled = customer_dal.AsyncPooledCustomerRepository
    assert pooled.search.__doc__ == customer_dal.AsyncCustomerRepository.search.__doc__


def test_an_async_pooled_repository_needs_an_async_pool(databases: tuple[str, str]) -> None:
    primary, _ = databases
    expected = r"async_pool\(\), not Pool; .* AsyncCustomerRepository"
    with customer_dal.pool(primary, min_size=1) as opened, pytest.raises(TypeError, match=expected):
        customer_dal.AsyncPooledCustomerRepository(opened)  # type: ignore[arg-type]


def _export_through(
    primary: str,
    replica: str,
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[str, list[str]]:
    """Create ``name`` on the primary, then export with the replica set: the file, stderr."""
    with psycopg.connect(primary, autocommit=True) as conn:
        CustomerRepository(conn).create({"name": name, "phone": _phone()})
    monkeypatch.setenv("DATABASE_REPLICA_URL", replica)
    target = tmp_path / "out.csv"
    assert cli.main(["--dsn", primary, "export", str(target)]) == 0
    return target.read_text(), capsys.readouterr().err.splitlines()


def test_export_and_search_read_from_the_replica(
    databases: tuple[str, str],
    lagging: ReplicaPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary, replica = databases
    exported, err = _export_through(
        primary, replica, "Ann Unexported", tmp_path, monkeypatch, capsys
    )
    assert f"reads from: {describe(replica)}" in err
    assert "Ann Unexported" not in exported  # the standby is behind

    assert cli.main(["--dsn", primary, "search", "Unexported"]) == 0
    assert "(0 customers)" in capsys.readouterr().out


def test_export_falls_back_to_the_primary_when_the_replica_is_away(
    databases: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary, _ = databases
    nowhere = f"postgresql://postgres@/x?host={tmp_path}&port=1"
    exported, err = _export_through(primary, nowhere, "Ann Fallback", tmp_path, monkeypatch, capsys)
    [warning] = [line for line in err if "warning" in line]
    assert warning.startswith(f"customer-dal: warning: cannot connect to postgres@{tmp_path}:1/x")
    assert warning.endswith("; reading from the primary")
    assert "Ann Fallback" in exported


def test_reads_that_fail_together_make_one_warning(
    databases: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=_REPLICA_LOGGER)
    both = threading.Barrier(2, timeout=10)

    def cut(conn: psycopg.Connection[Any]) -> None:
        both.wait()  # two reads in flight at once, on the standby, then on the primary
        raise DatabaseUnavailableError(f"cut (recovery: {_in_recovery(conn)})")

    failures: list[str] = []

    def read() -> None:
        try:
            routed.run_read(cut)
        except DatabaseUnavailableError as exc:
            failures.append(str(exc))

    primary, replica = databases
    with customer_dal.pool(primary, replica_dsn=replica, min_size=1, max_size=2) as routed:
        threads = [threading.Thread(target=read) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == ["cut (recovery: False)"] * 2  # each fell back to the primary
    [warning] = [r.getMessage() for r in caplog.records if r.name == _REPLICA_LOGGER]
    assert warning.endswith("cut (recovery: True)")


@pytest.mark.asyncio
async def test_async_reads_that_fail_together_make_one_warning(
    databases: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=_REPLICA_LOGGER)
    both = asyncio.Barrier(2)

    async def cut(conn: psycopg.AsyncConnection[Any]) -> None:
        await asyncio.wait_for(both.wait(), 10)  # two reads in flight, as above
        [(recovery,)] = await (await conn.execute(_RECOVERY)).fetchall()
        raise DatabaseUnavailableError(f"cut (recovery: {recovery})")

    primary, replica = databases
    async with await customer_dal.async_pool(
        primary, replica_dsn=replica, min_size=1, max_size=2
    ) as routed:
        outcomes = await asyncio.gather(
            routed.run_read(cut), routed.run_read(cut), return_exceptions=True
        )
    assert [str(outcome) for outcome in outcomes] == ["cut (recovery: False)"] * 2
    [warning] = [r.getMessage() for r in caplog.records if r.name == _REPLICA_LOGGER]
    assert warning.endswith("cut (recovery: True)")
