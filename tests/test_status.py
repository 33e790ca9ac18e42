"""Migration status tells the truth and only reads: on a hot standby, as a role
that may only read the bookkeeping, on a never-migrated database, while a run
holds the lock, and against a database ahead of the checkout."""

from __future__ import annotations

import itertools
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from customer_dal import (
    MigrationError,
    MigrationState,
    PermissionDeniedError,
    ReadOnlyDatabaseError,
    cli,
    migrate,
    migration_status,
    rollback,
)
from customer_dal.db import with_database
from customer_dal.migrations import _ADVISORY_LOCK_KEY, BOOKKEEPING_SCHEMA
from customer_dal.resources import migrations_directory

from .catalog import catalog_snapshot
from .servers import ReplicaPair, replica_pair  # noqa: F401 - the fixture
from .shipped import LATEST, NEXT, states, status_lines

APPLIED = states("applied")
PENDING = states("pending")
EXTRA = f"{NEXT}_x"
UNKNOWN = f"the database has migrations this checkout does not know: {EXTRA}; update the checkout"

_names = itertools.count()


def _cli(capsys: pytest.CaptureFixture[str], dsn: str, command: str) -> tuple[int, str, list[str]]:
    """``customer-dal --dsn DSN COMMAND``: exit code, stdout and the error lines of stderr
    (which may say more, such as which database the command talks to)."""
    code = cli.main(["--dsn", dsn, command])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, [line for line in err.splitlines() if line.startswith("customer-dal: error")]


def _one(dsn: str, query: str) -> Any:
    with psycopg.connect(dsn, autocommit=True) as connection:
        [(value,)] = connection.execute(query).fetchall()
    return value


def _bookkeeping(dsn: str) -> list[tuple[Any, ...]]:
    """Every bookkeeping row, to prove that a refused run wrote nothing."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        return [
            *connection.execute(
                f"SELECT migration_id, applied_at_utc FROM {BOOKKEEPING_SCHEMA}._yoyo_migration"
                " ORDER BY 1"
            ),
            *connection.execute(
                f"SELECT migration_id, sha256 FROM {BOOKKEEPING_SCHEMA}.migration_checksum"
                " ORDER BY 1"
            ),
            *connection.execute(f"SELECT count(*) FROM {BOOKKEEPING_SCHEMA}._yoyo_log"),
        ]


def _schema_exists(dsn: str) -> bool:
    return bool(
        _one(dsn, f"SELECT count(*) FROM pg_namespace WHERE nspname = '{BOOKKEEPING_SCHEMA}'")
    )


# --- a hot standby ---------------------------------------------------------------


@pytest.fixture
def replica_db(replica_pair: ReplicaPair) -> Iterator[tuple[str, str]]:  # noqa: F811
    """A new database on the primary: its DSN there and on the standby."""
    name = f"cdal_status_{os.getpid()}_{next(_names)}"
    with psycopg.connect(replica_pair.primary_dsn, autocommit=True) as primary:
        primary.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    replica_pair.wait_for_replay()
    yield (
        with_database(replica_pair.primary_dsn, name),
        with_database(replica_pair.replica_dsn, name),
    )
    with psycopg.connect(replica_pair.primary_dsn, autocommit=True) as primary:
        primary.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_status_works_on_a_streaming_replica(
    replica_pair: ReplicaPair,  # noqa: F811
    replica_db: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    primary, replica = replica_db
    assert _one(replica, "SELECT pg_is_in_recovery()") is True
    assert migration_status(replica) == PENDING

    migrate(primary)
    replica_pair.wait_for_replay()

    assert migration_status(replica) == APPLIED
    assert _cli(capsys, replica, "status") == (
        0,
        status_lines("applied"),
        [],
    )


def test_status_on_a_replica_sees_an_unknown_migration(
    replica_pair: ReplicaPair,  # noqa: F811
    replica_db: tuple[str, str],
    own_migrations: Path,
) -> None:
    primary, replica = replica_db
    migrate(primary, directory=own_migrations)
    replica_pair.wait_for_replay()
    assert migration_status(replica) == [*APPLIED, MigrationState(EXTRA, "unknown")]


def test_migrate_and_rollback_on_a_replica_say_it_is_read_only(
    replica_pair: ReplicaPair,  # noqa: F811
    replica_db: tuple[str, str],
) -> None:
    primary, replica = replica_db
    migrate(primary)
    replica_pair.wait_for_replay()
    with pytest.raises(ReadOnlyDatabaseError, match="send writes to the primary"):
        migrate(replica)
    with pytest.raises(ReadOnlyDatabaseError):
        rollback(replica)
    assert migration_status(replica) == APPLIED


# --- a role that may only read ---------------------------------------------------


def _make_role(dsn: str, *, can_read_bookkeeping: bool) -> Iterator[str]:
    """A LOGIN role with a password (for servers that ask), and no privilege beyond
    reading the bookkeeping when asked; yield a DSN that connects as it."""
    role = f"cdal_reader_{os.getpid()}_{next(_names)}"
    password = secrets.token_hex(16)
    ident = sql.Identifier(role)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password))
        )
        if can_read_bookkeeping:
            schema = sql.Identifier(BOOKKEEPING_SCHEMA)
            admin.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident))
            admin.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, ident)
            )
    try:
        yield make_conninfo(dsn, user=role, password=password)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(ident))
            admin.execute(sql.SQL("DROP ROLE {}").format(ident))


@pytest.fixture
def reader_dsn(dsn: str) -> Iterator[str]:
    """The migrated database, as a role with USAGE and SELECT on the bookkeeping only."""
    yield from _make_role(dsn, can_read_bookkeeping=True)


@pytest.fixture
def outsider_dsn(dsn: str) -> Iterator[str]:
    """The migrated database, as a role that may not even read the bookkeeping."""
    yield from _make_role(dsn, can_read_bookkeeping=False)


def test_status_works_for_a_role_that_can_only_read(
    dsn: str, reader_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _bookkeeping(dsn)
    privileges = (
        "SELECT has_database_privilege(current_database(), 'CREATE'),"
        f" has_schema_privilege('{BOOKKEEPING_SCHEMA}', 'CREATE'),"
        f" has_table_privilege('{BOOKKEEPING_SCHEMA}._yoyo_migration', 'INSERT')"
    )
    with psycopg.connect(reader_dsn) as reader:
        assert reader.execute(privileges).fetchall() == [(False, False, False)]

    assert migration_status(reader_dsn) == APPLIED
    assert _cli(capsys, reader_dsn, "status") == (
        0,
        status_lines("applied"),
        [],
    )
    assert _bookkeeping(dsn) == before


def test_migrate_as_a_role_that_can_only_read_is_permission_denied(reader_dsn: str) -> None:
    with pytest.raises(PermissionDeniedError, match="permission denied"):
        migrate(reader_dsn)


def test_a_role_that_cannot_read_the_bookkeeping_gets_one_clear_error(
    outsider_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(
        PermissionDeniedError, match=f"permission denied for schema {BOOKKEEPING_SCHEMA}"
    ):
        migration_status(outsider_dsn)
    code, out, errors = _cli(capsys, outsider_dsn, "status")
    assert (code, out, len(errors)) == (1, "", 1)
    assert "permission denied" in errors[0]


# --- a never-migrated database, and a run in progress ----------------------------


def test_status_of_a_never_migrated_database_creates_nothing(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = catalog_snapshot(empty_dsn)
    assert migration_status(empty_dsn) == PENDING
    assert _cli(capsys, empty_dsn, "status") == (
        1,
        status_lines("pending"),
        [],
    )
    assert not _schema_exists(empty_dsn)
    assert catalog_snapshot(empty_dsn) == before


def test_status_answers_at_once_while_a_run_holds_the_lock(dsn: str) -> None:
    answers: list[list[MigrationState]] = []
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [_ADVISORY_LOCK_KEY])
        # A thread, so a status that waited for the lock fails this test in
        # seconds instead of hanging it for the lock timeout.
        asker = threading.Thread(target=lambda: answers.append(migration_status(dsn)))
        asker.start()
        asker.join(timeout=5)
        assert answers == [APPLIED], "status waited for the migration lock"
    asker.join()


# --- a database ahead of the checkout --------------------------------------------


@pytest.fixture
def own_migrations(tmp_path: Path) -> Path:
    """The shipped migrations plus one more: what a newer checkout would have."""
    directory = tmp_path / "migrations"
    shutil.copytree(migrations_directory(), directory)
    (directory / f"{EXTRA}.sql").write_text(f"-- depends: {LATEST}\nCREATE TABLE x (id int);\n")
    (directory / f"{EXTRA}.rollback.sql").write_text("DROP TABLE x;\n")
    return directory


def test_a_migration_the_checkout_does_not_know_is_unknown_and_blocks_changes(
    empty_dsn: str, own_migrations: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate(empty_dsn, directory=own_migrations)  # a newer checkout migrated the database
    schema, bookkeeping = catalog_snapshot(empty_dsn), _bookkeeping(empty_dsn)

    assert migration_status(empty_dsn) == [*APPLIED, MigrationState(EXTRA, "unknown")]
    assert _cli(capsys, empty_dsn, "status") == (
        1,
        status_lines("applied") + f"unknown  {EXTRA}\n",
        [],
    )
    with pytest.raises(MigrationError, match=f"^{UNKNOWN}$"):
        migrate(empty_dsn)
    with pytest.raises(MigrationError, match=f"^{UNKNOWN}$"):
        rollback(empty_dsn)
    for command in ("migrate", "rollback"):
        assert _cli(capsys, empty_dsn, command) == (1, "", [f"customer-dal: error: {UNKNOWN}"])

    assert catalog_snapshot(empty_dsn) == schema
    assert _bookkeeping(empty_dsn) == bookkeeping
    # The newer checkout still can roll it back.
    assert rollback(empty_dsn, directory=own_migrations) == [EXTRA]
    assert migration_status(empty_dsn) == APPLIED
