"""Non-transactional migrations (``-- transactional: false``): statement by statement,
repeatable, reported as incomplete when they stop half-way, and completed by a re-run."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from customer_dal import (
    MigrationError,
    MigrationState,
    PermissionDeniedError,
    migrate,
    migration_status,
    rollback,
)
from customer_dal import migrations as migrations_module
from customer_dal.migrations import BOOKKEEPING_SCHEMA
from customer_dal.resources import migrations_directory

from .catalog import catalog_snapshot
from .shipped import LATEST, NEXT, states
from .test_status import _make_role

LIVE = f"{NEXT}_live"

# A live migration of the tests' own: a table, a gate the test opens by adding a
# row (until then the second statement fails, or waits, as the test wants), and a
# unique index built concurrently, which fails, INVALID, on duplicate rows.
_UP = f"""-- A live step of the tests' own.
-- transactional: false
-- depends: {LATEST}

CREATE TABLE IF NOT EXISTS live_a (id int);

CREATE TABLE IF NOT EXISTS live_gate (open boolean);

{{gate}}

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS live_a_key ON live_a (id);
"""
_DOWN = """-- Undo it.

DROP INDEX CONCURRENTLY IF EXISTS live_a_key;

{gate}

DROP TABLE IF EXISTS live_gate;

DROP TABLE IF EXISTS live_a;
"""
_FAIL_UNTIL_OPEN = """DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM live_gate WHERE open) THEN
        RAISE EXCEPTION 'the gate is closed';
    END IF;
END
$$;"""
_WAIT_UNTIL_OPEN = (
    "SELECT pg_sleep(CASE WHEN EXISTS (SELECT 1 FROM live_gate WHERE open) THEN 0 ELSE 60 END);"
)


@pytest.fixture
def own(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    shutil.copytree(migrations_directory(), directory)
    return directory


def _write(directory: Path, up_gate: str = "SELECT 1;", down_gate: str = "SELECT 1;") -> None:
    (directory / f"{LIVE}.sql").write_text(_UP.format(gate=up_gate))
    (directory / f"{LIVE}.rollback.sql").write_text(_DOWN.format(gate=down_gate))


def _open_gate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO live_gate VALUES (true)")


def _status_of(dsn: str, directory: Path) -> MigrationState:
    return migration_status(dsn, directory=directory)[-1]


def _index_valid(dsn: str, name: str) -> bool | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name]
        ).fetchone()
    return None if row is None else bool(row[0])


@pytest.fixture
def migrated(dsn: str) -> str:
    """The shipped migrations applied: the tests' own live migration is pending."""
    return dsn


def test_a_live_migration_goes_up_down_without_a_trace_and_up_again(
    migrated: str, own: Path
) -> None:
    _write(own)
    before = catalog_snapshot(migrated)
    assert migrate(migrated, directory=own) == [LIVE]
    after = catalog_snapshot(migrated)
    assert _index_valid(migrated, "live_a_key") is True
    assert _status_of(migrated, own) == MigrationState(LIVE, "applied")
    assert rollback(migrated, directory=own) == [LIVE]
    assert catalog_snapshot(migrated) == before
    assert migrate(migrated, directory=own) == [LIVE]
    assert catalog_snapshot(migrated) == after


def test_a_failing_statement_stops_the_run_in_one_line_and_a_rerun_completes_it(
    migrated: str, own: Path
) -> None:
    _write(own, up_gate=_FAIL_UNTIL_OPEN)
    with pytest.raises(MigrationError) as caught:
        migrate(migrated, directory=own)
    message = str(caught.value)
    assert "\n" not in message
    assert f"applying {LIVE}.sql stopped at statement 3 of 4 (DO $$)" in message
    assert "the gate is closed" in message
    assert f"{LIVE} is incomplete" in message
    assert _status_of(migrated, own) == MigrationState(LIVE, "incomplete")
    assert migration_status(migrated, directory=own)[:-1] == states("applied")

    _open_gate(migrated)
    assert migrate(migrated, directory=own) == [LIVE]
    assert _status_of(migrated, own) == MigrationState(LIVE, "applied")
    assert _index_valid(migrated, "live_a_key") is True
    assert migrate(migrated, directory=own) == []


def test_a_terminated_session_leaves_an_incomplete_migration_a_rerun_completes(
    migrated: str, own: Path
) -> None:
    _write(own, up_gate=_WAIT_UNTIL_OPEN)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            migrate(migrated, directory=own)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    with psycopg.connect(migrated, autocommit=True) as admin:
        for _ in range(300):
            terminated = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(CASE%%'"
            ).fetchall()
            if terminated:
                break
            time.sleep(0.1)
    runner.join(30)
    assert terminated, "the migration never reached its waiting statement"
    [error] = outcome
    assert isinstance(error, MigrationError)
    assert "stopped at statement 3 of 4" in str(error)
    assert _status_of(migrated, own) == MigrationState(LIVE, "incomplete")

    _open_gate(migrated)
    assert migrate(migrated, directory=own) == [LIVE]
    assert _status_of(migrated, own) == MigrationState(LIVE, "applied")


def test_a_failed_concurrent_build_leaves_an_invalid_index_that_the_rerun_replaces(
    migrated: str, own: Path
) -> None:
    _write(own)
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("CREATE TABLE live_a (id int)")
        conn.execute("INSERT INTO live_a VALUES (1), (1)")
    with pytest.raises(MigrationError, match="could not create unique index"):
        migrate(migrated, directory=own)
    assert _index_valid(migrated, "live_a_key") is False
    assert _status_of(migrated, own) == MigrationState(LIVE, "incomplete")

    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("DELETE FROM live_a")
    assert migrate(migrated, directory=own) == [LIVE]
    assert _index_valid(migrated, "live_a_key") is True


def test_an_interrupted_apply_can_be_rolled_back_instead(migrated: str, own: Path) -> None:
    _write(own, up_gate=_FAIL_UNTIL_OPEN)
    before = catalog_snapshot(migrated)
    with pytest.raises(MigrationError):
        migrate(migrated, directory=own)
    assert rollback(migrated, directory=own) == [LIVE]
    assert catalog_snapshot(migrated) == before
    assert _status_of(migrated, own) == MigrationState(LIVE, "pending")


def test_an_interrupted_rollback_is_incomplete_and_migrate_or_rollback_finishes_it(
    migrated: str, own: Path
) -> None:
    _write(own, down_gate=_FAIL_UNTIL_OPEN.replace("NOT EXISTS", "EXISTS"))
    assert migrate(migrated, directory=own) == [LIVE]
    _open_gate(migrated)
    with pytest.raises(MigrationError, match=f"rolling back {LIVE}.sql stopped at statement 2"):
        rollback(migrated, directory=own)
    assert _status_of(migrated, own) == MigrationState(LIVE, "incomplete")
    # migrate puts back what the rollback took away, and it is applied again.
    assert migrate(migrated, directory=own) == [LIVE]
    assert _status_of(migrated, own) == MigrationState(LIVE, "applied")
    assert _index_valid(migrated, "live_a_key") is True

    with pytest.raises(MigrationError, match="rolling back"):
        rollback(migrated, directory=own)
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("DELETE FROM live_gate")
    assert rollback(migrated, directory=own) == [LIVE]
    assert _status_of(migrated, own) == MigrationState(LIVE, "pending")


@pytest.fixture
def quick_lock_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations_module, "STATEMENT_LOCK_TIMEOUT", 0.2)
    monkeypatch.setattr(migrations_module, "LOCK_RETRY_PAUSE", 0.05)


@pytest.fixture
def holder(migrated: str) -> Iterator[psycopg.Connection[Any]]:
    """A session that holds a lock on live_a (as a long transaction would) until released."""
    with psycopg.connect(migrated, autocommit=True) as setup:
        setup.execute("CREATE TABLE live_a (id int)")
    with psycopg.connect(migrated) as conn:
        conn.execute("LOCK TABLE live_a IN ACCESS EXCLUSIVE MODE")
        yield conn


def test_a_statement_that_cannot_get_its_lock_is_retried_until_it_can(
    migrated: str, own: Path, quick_lock_retries: None, holder: psycopg.Connection[Any]
) -> None:
    _write(own)
    release = threading.Timer(0.3, holder.rollback)
    release.start()
    try:
        assert migrate(migrated, directory=own) == [LIVE]
    finally:
        release.join()
    assert _status_of(migrated, own) == MigrationState(LIVE, "applied")


def test_retries_are_bounded_then_the_run_stops_incomplete(
    migrated: str, own: Path, quick_lock_retries: None, holder: psycopg.Connection[Any]
) -> None:
    _write(own)
    started = time.monotonic()
    with pytest.raises(MigrationError, match="lock timeout"):
        migrate(migrated, directory=own)
    assert time.monotonic() - started < 10
    assert _status_of(migrated, own) == MigrationState(LIVE, "incomplete")
    holder.rollback()
    assert migrate(migrated, directory=own) == [LIVE]


def test_a_rollback_file_must_be_as_repeatable_as_its_migration(migrated: str, own: Path) -> None:
    _write(own)
    (own / f"{LIVE}.rollback.sql").write_text("DROP INDEX live_a_key;\n")
    with pytest.raises(MigrationError, match=rf"{LIVE}\.rollback\.sql .*DROP INDEX CONCURRENTLY"):
        migrate(migrated, directory=own)


def test_a_role_that_cannot_read_the_incomplete_marks_gets_one_clear_error(
    migrated: str,
) -> None:
    """A reader granted the bookkeeping tables one by one, before migration_incomplete
    existed (sql/roles.sql's default privileges cover it; a hand-made role may not)."""
    for reader in _make_role(migrated, can_read_bookkeeping=True):
        with psycopg.connect(migrated, autocommit=True) as admin:
            admin.execute(
                sql.SQL("REVOKE SELECT ON {}.migration_incomplete FROM {}").format(
                    sql.Identifier(BOOKKEEPING_SCHEMA),
                    sql.Identifier(conninfo_to_dict(reader)["user"]),
                )
            )
        with pytest.raises(PermissionDeniedError, match="migration_incomplete"):
            migration_status(reader)
