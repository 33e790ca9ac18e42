"""Migrations: up, idempotent up, down, down leaves no trace, up again, and the
failure modes a deploy must survive."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from customer_dal import (
    MigrationError,
    MigrationLockedError,
    MigrationState,
    migrate,
    migration_status,
    rollback,
)
from customer_dal.db import describe
from customer_dal.migrations import _ADVISORY_LOCK_KEY, BOOKKEEPING_SCHEMA
from customer_dal.resources import migrations_directory

from .catalog import catalog_snapshot
from .pgbouncer import pid_inventing_proxy
from .shipped import LATEST, NEXT, SHIPPED, checkout_up_to, states
from .threads import run_together

ALL = SHIPPED


def _tables(dsn: str, schema: str = "public") -> set[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]
        ).fetchall()
    return {row[0] for row in rows}


@pytest.fixture
def own_migrations(tmp_path: Path) -> Path:
    """A copy of the shipped migrations that a test may extend or edit."""
    directory = tmp_path / "migrations"
    shutil.copytree(migrations_directory(), directory)
    return directory


def test_migrate_applies_every_migration_in_order(empty_dsn: str) -> None:
    assert migrate(empty_dsn) == ALL
    assert {"users", "customers"} <= _tables(empty_dsn)


def test_migrate_twice_applies_nothing_the_second_time(empty_dsn: str) -> None:
    migrate(empty_dsn)
    before = catalog_snapshot(empty_dsn)
    assert migrate(empty_dsn) == []
    assert catalog_snapshot(empty_dsn) == before


def test_bookkeeping_stays_out_of_the_application_schema(empty_dsn: str) -> None:
    migrate(empty_dsn)
    assert _tables(empty_dsn) == {"users", "customers"}
    assert {"_yoyo_migration", "_yoyo_log", "yoyo_lock", "migration_checksum"} <= _tables(
        empty_dsn, BOOKKEEPING_SCHEMA
    )


def test_rollback_one_step_undoes_only_the_newest(empty_dsn: str) -> None:
    migrate(empty_dsn)
    assert rollback(empty_dsn) == [LATEST]
    assert migration_status(empty_dsn) == [
        *states("applied", SHIPPED[:-1]),
        MigrationState(LATEST, "pending"),
    ]


@pytest.mark.parametrize("migration_id", SHIPPED)
def test_each_migration_goes_up_down_without_a_trace_and_up_again(
    empty_dsn: str, tmp_path: Path, migration_id: str
) -> None:
    upto = checkout_up_to(tmp_path / "migrations", migration_id)
    assert migrate(empty_dsn, directory=upto)[-1:] == [migration_id]
    assert rollback(empty_dsn, directory=upto) == [migration_id]
    before = catalog_snapshot(empty_dsn)
    assert migrate(empty_dsn, directory=upto) == [migration_id]
    after = catalog_snapshot(empty_dsn)
    assert after != before, f"{migration_id} changed nothing the catalog shows"
    assert rollback(empty_dsn, directory=upto) == [migration_id]
    assert catalog_snapshot(empty_dsn) == before
    assert migrate(empty_dsn, directory=upto) == [migration_id]
    assert catalog_snapshot(empty_dsn) == after


def test_full_rollback_leaves_no_trace_and_up_again_restores_the_same_catalog(
    empty_dsn: str,
) -> None:
    never_migrated = catalog_snapshot(empty_dsn)
    migrate(empty_dsn)
    migrated = catalog_snapshot(empty_dsn)

    assert rollback(empty_dsn, steps=len(ALL)) == ALL[::-1]
    assert catalog_snapshot(empty_dsn) == never_migrated

    assert migrate(empty_dsn) == ALL
    assert catalog_snapshot(empty_dsn) == migrated


def test_rollback_with_nothing_applied_is_a_no_op(empty_dsn: str) -> None:
    assert rollback(empty_dsn) == []


def test_rollback_rejects_a_step_count_below_one(empty_dsn: str) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        rollback(empty_dsn, steps=0)


def test_rollback_keeps_an_extension_it_did_not_create(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION pg_trgm")
    never_migrated = catalog_snapshot(empty_dsn)
    migrate(empty_dsn)
    rollback(empty_dsn, steps=len(SHIPPED))
    assert catalog_snapshot(empty_dsn) == never_migrated


def test_a_broken_migration_leaves_neither_schema_nor_bookkeeping(
    empty_dsn: str, own_migrations: Path
) -> None:
    (own_migrations / f"{NEXT}_broken.sql").write_text(
        f"-- depends: {LATEST}\n"
        "CREATE TABLE half_done (id int);\n"
        "ALTER TABLE customers ADD COLUMN nickname text;\n"
        "SELECT no_such_function();\n"
    )
    (own_migrations / f"{NEXT}_broken.rollback.sql").write_text("DROP TABLE half_done;\n")
    migrate(empty_dsn)  # the shipped ones
    before = catalog_snapshot(empty_dsn)

    with pytest.raises(MigrationError, match=rf"{NEXT}_broken\.sql failed, nothing was changed"):
        migrate(empty_dsn, directory=own_migrations)

    assert catalog_snapshot(empty_dsn) == before
    assert migration_status(empty_dsn, directory=own_migrations)[-1] == MigrationState(
        f"{NEXT}_broken", "pending"
    )


def test_a_failing_rollback_changes_nothing(empty_dsn: str, own_migrations: Path) -> None:
    (own_migrations / f"{NEXT}_extra.sql").write_text(
        f"-- depends: {LATEST}\nCREATE TABLE extra (id int);\n"
    )
    (own_migrations / f"{NEXT}_extra.rollback.sql").write_text("DROP TABLE no_such_table;\n")
    migrate(empty_dsn, directory=own_migrations)
    with pytest.raises(MigrationError, match=rf"rolling back {NEXT}_extra\.sql failed"):
        rollback(empty_dsn, directory=own_migrations)
    assert "extra" in _tables(empty_dsn)
    assert migration_status(empty_dsn, directory=own_migrations)[-1].state == "applied"


def test_an_edited_migration_is_refused_by_name(empty_dsn: str, own_migrations: Path) -> None:
    migrate(empty_dsn, directory=own_migrations)
    edited = own_migrations / "0001_users.sql"
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")

    with pytest.raises(MigrationError, match=r"0001_users\.sql was edited after it was applied"):
        migrate(empty_dsn, directory=own_migrations)
    with pytest.raises(MigrationError, match=r"0001_users\.sql was edited"):
        rollback(empty_dsn, directory=own_migrations)
    assert migration_status(empty_dsn, directory=own_migrations)[0] == MigrationState(
        "0001_users", "edited"
    )


def test_an_edited_rollback_file_is_refused_too(empty_dsn: str, own_migrations: Path) -> None:
    migrate(empty_dsn, directory=own_migrations)
    (own_migrations / "0002_customers.rollback.sql").write_text("DROP TABLE customers;\n")
    with pytest.raises(MigrationError, match=r"0002_customers\.sql was edited"):
        rollback(empty_dsn, directory=own_migrations)


def _with_line_endings(directory: Path, ending: bytes) -> None:
    """Rewrite every file of ``directory`` with ``ending``, as git's autocrlf would."""
    for path in directory.glob("*.sql"):
        path.write_bytes(path.read_bytes().replace(b"\n", ending))


def _recorded_checksums(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            f"SELECT migration_id, sha256 FROM {BOOKKEEPING_SCHEMA}.migration_checksum"
        ).fetchall()
    return dict(rows)


@pytest.mark.parametrize("ending", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_other_line_endings_are_not_an_edit(
    empty_dsn: str, own_migrations: Path, ending: bytes
) -> None:
    migrate(empty_dsn, directory=own_migrations)
    recorded = _recorded_checksums(empty_dsn)
    _with_line_endings(own_migrations, ending)

    assert migration_status(empty_dsn, directory=own_migrations) == states("applied")
    assert migrate(empty_dsn, directory=own_migrations) == []
    assert rollback(empty_dsn, directory=own_migrations) == [LATEST]
    assert migrate(empty_dsn, directory=own_migrations) == [LATEST]
    # What is recorded does not depend on the checkout's line endings.
    assert _recorded_checksums(empty_dsn) == recorded

    edited = own_migrations / "0001_users.sql"
    edited.write_bytes(edited.read_bytes() + b"-- a real edit" + ending)
    assert migration_status(empty_dsn, directory=own_migrations)[0] == MigrationState(
        "0001_users", "edited"
    )


def test_a_checksum_of_the_raw_bytes_from_an_older_version_is_accepted(
    empty_dsn: str, own_migrations: Path
) -> None:
    """Earlier versions recorded a SHA-256 of the raw bytes: of a CRLF checkout, say."""
    _with_line_endings(own_migrations, b"\r\n")
    migrate(empty_dsn, directory=own_migrations)
    with psycopg.connect(empty_dsn, autocommit=True) as connection:
        for migration_id in ALL:
            up = own_migrations / f"{migration_id}.sql"
            down = own_migrations / f"{migration_id}.rollback.sql"
            raw = hashlib.sha256(up.read_bytes() + b"\0" + down.read_bytes()).hexdigest()
            connection.execute(
                f"UPDATE {BOOKKEEPING_SCHEMA}.migration_checksum SET sha256 = %s"
                " WHERE migration_id = %s",
                [raw, migration_id],
            )

    for checkout in (own_migrations, migrations_directory()):  # CRLF, and LF
        assert migration_status(empty_dsn, directory=checkout) == states("applied")
    assert rollback(empty_dsn) == [LATEST]


def test_a_migration_without_rollback_file_is_refused(empty_dsn: str, own_migrations: Path) -> None:
    (own_migrations / f"{NEXT}_oneway.sql").write_text("CREATE TABLE oneway (id int);\n")
    with pytest.raises(
        MigrationError, match=rf"{NEXT}_oneway\.sql has no {NEXT}_oneway\.rollback\.sql"
    ):
        migrate(empty_dsn, directory=own_migrations)
    assert _tables(empty_dsn) == set()


def test_a_non_transactional_migration_that_could_not_run_again_is_refused(
    empty_dsn: str, own_migrations: Path
) -> None:
    (own_migrations / f"{NEXT}_loose.sql").write_text(
        "-- transactional: false\nCREATE INDEX loose ON customers (email);\n"
    )
    (own_migrations / f"{NEXT}_loose.rollback.sql").write_text(
        "DROP INDEX CONCURRENTLY IF EXISTS loose;\n"
    )
    with pytest.raises(MigrationError, match="CREATE INDEX CONCURRENTLY IF NOT EXISTS"):
        migrate(empty_dsn, directory=own_migrations)
    assert _tables(empty_dsn) == set()


def test_an_unresolvable_dependency_is_a_clear_error(empty_dsn: str, own_migrations: Path) -> None:
    (own_migrations / f"{NEXT}_orphan.sql").write_text("-- depends: 0000_nothing\nSELECT 1;\n")
    (own_migrations / f"{NEXT}_orphan.rollback.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=rf"cannot read {NEXT}_orphan\.sql"):
        migrate(empty_dsn, directory=own_migrations)


def test_a_missing_migrations_directory_is_a_clear_error(empty_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="does not exist"):
        migrate(empty_dsn, directory=tmp_path / "nowhere")


def test_a_locked_database_fails_clearly_after_the_timeout(empty_dsn: str) -> None:
    with psycopg.connect(empty_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        with pytest.raises(MigrationLockedError, match="another migration run holds the lock"):
            migrate(empty_dsn, lock_timeout=0.2)
    assert migrate(empty_dsn) == ALL


def test_concurrent_runs_apply_the_schema_once_without_error(empty_dsn: str) -> None:
    outcomes = run_together(lambda _: migrate(empty_dsn), 4)
    assert sorted(outcomes) == [[], [], [], ALL]  # type: ignore[type-var]


@pytest.mark.slow
def test_concurrent_processes_apply_the_schema_once(empty_dsn: str) -> None:
    command = [sys.executable, "-m", "customer_dal", "--dsn", empty_dsn, "migrate"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0]
    assert sum(output.count(f"applied {LATEST}") for output in outputs) == 1
    assert migration_status(empty_dsn) == states("applied")


@pytest.mark.slow
def test_a_killed_run_leaves_no_lock(empty_dsn: str) -> None:
    holder_code = (
        "import sys, time, psycopg\n"
        "from customer_dal.migrations import _locked_backend\n"
        "with _locked_backend(sys.argv[1], 5):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(600)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", holder_code, empty_dsn], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        holder.kill()
    assert migrate(empty_dsn, lock_timeout=10) == ALL


def test_each_migration_applied_or_rolled_back_is_logged_with_its_duration(
    empty_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="customer_dal"):
        migrate(empty_dsn)
        rollback(empty_dsn, steps=2)
    lines = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    expected = [f"applied {m}" for m in ALL] + [f"rolled back {m}" for m in ALL[:-3:-1]]
    assert [(name, level) for name, level, _ in lines] == [
        ("customer_dal.migrations", logging.INFO)
    ] * len(expected)
    for (_, _, message), start in zip(lines, expected, strict=True):
        assert re.fullmatch(rf"{start} in \d+\.\d{{3}} s", message), message


def test_the_library_logs_nothing_unless_the_application_configures_logging(
    empty_dsn: str,
) -> None:
    """Without a handler of ours, Python's last resort would print warnings on stderr."""
    code = (
        "import logging, sys, customer_dal\n"
        "customer_dal.migrate(sys.argv[1])\n"
        "logging.getLogger('customer_dal.migrations').warning('not for stderr')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, empty_dsn],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


REFUSAL = (
    "migrations need a session of their own: run them against the server directly, "
    "not through a transaction-mode pooler (CUSTOMER_DAL_POOLER=transaction)"
)


def test_migrations_refuse_a_transaction_pooler_before_connecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server here is unreachable: the refusal comes first, whatever the database."""
    nowhere = "postgresql://ann@127.0.0.1:1/shop"
    for run in (migrate, rollback):
        with pytest.raises(MigrationError) as caught:
            run(nowhere, pooler="transaction")
        assert str(caught.value) == REFUSAL
    monkeypatch.setenv("CUSTOMER_DAL_POOLER", "transaction")
    for run in (migrate, rollback):
        with pytest.raises(MigrationError) as caught:
            run(nowhere)
        assert str(caught.value) == REFUSAL


def test_a_declared_session_pooler_or_none_lets_migrations_run(
    empty_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTOMER_DAL_POOLER", "transaction")
    assert migrate(empty_dsn, pooler="session") == ALL  # the argument wins
    assert rollback(empty_dsn, pooler="none") == [LATEST]
    # Status takes no lock and sets nothing: it runs whatever the pooler.
    assert migration_status(empty_dsn) == [
        *states("applied", SHIPPED[:-1]),
        MigrationState(LATEST, "pending"),
    ]


def _other_sessions(dsn: str) -> int:
    """Sessions on ``dsn``'s database besides the asking one, once exiting ones are gone."""
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as connection:
        while True:
            [(count,)] = connection.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
            if count == 0 or time.monotonic() > deadline:
                return int(count)
            time.sleep(0.01)


def test_a_run_leaves_no_session_behind_so_no_lock_or_search_path_survives(
    empty_dsn: str, own_migrations: Path
) -> None:
    """The lock and yoyo's search_path live on connections the run closes, even when it fails."""
    migrate(empty_dsn)
    assert _other_sessions(empty_dsn) == 0
    (own_migrations / f"{NEXT}_broken.sql").write_text(f"-- depends: {LATEST}\nSELECT 1/0;\n")
    (own_migrations / f"{NEXT}_broken.rollback.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="failed, nothing was changed"):
        migrate(empty_dsn, directory=own_migrations)
    assert _other_sessions(empty_dsn) == 0
    assert rollback(empty_dsn) == [LATEST]
    assert _other_sessions(empty_dsn) == 0
    with psycopg.connect(empty_dsn) as fresh:
        assert fresh.execute("SHOW search_path").fetchone() == ('"$user", public',)


def test_an_undeclared_pooler_is_refused_before_the_lock_is_taken(empty_dsn: str) -> None:
    """Seen by the backend pid a pooler makes up (here a proxy that only does that;
    tests/test_pgbouncer.py has the real PgBouncer). Declared as a session pooler,
    which this stand-in is, it is let through."""
    with pid_inventing_proxy(empty_dsn) as proxied:
        for run in (migrate, rollback):
            with pytest.raises(MigrationError) as caught:
                run(proxied)
            assert str(caught.value) == (
                f"{describe(proxied)} is reached through a connection pooler (the server's "
                "backend pid is not the one the connection was given), and migrations need a "
                "session of their own: run them against the server directly, or set "
                "CUSTOMER_DAL_POOLER=session if the pooler keeps each client on one server "
                "connection"
            )
        assert migration_status(proxied) == states("pending")  # nothing was created
        assert _tables(empty_dsn, BOOKKEEPING_SCHEMA) == set()
        assert migrate(proxied, pooler="session") == ALL
