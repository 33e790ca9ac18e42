"""Apply and roll back the hand-written SQL migrations, with yoyo underneath.

yoyo reads ``migrations/`` (``NNNN_name.sql`` plus ``NNNN_name.rollback.sql``),
orders them by their ``-- depends:`` lines and keeps its bookkeeping tables.
This module closes the gaps yoyo leaves open for a deploy tool:

* **Atomic steps.** A migration's statements, yoyo's bookkeeping row and our
  checksum are written in one transaction, so a failure or a killed process
  leaves neither schema nor bookkeeping behind. (yoyo commits the schema and
  its bookkeeping separately.)
* **Live-table steps, outside a transaction.** A migration whose header says
  ``-- transactional: false`` runs one statement at a time, each committing on
  its own, for what cannot run in a transaction block (``CREATE INDEX
  CONCURRENTLY``) or must not hold its locks for long (a backfill that commits
  batch by batch). Such a file keeps a discipline that :func:`_read` checks:
  indexes are created ``CONCURRENTLY IF NOT EXISTS`` and dropped
  ``CONCURRENTLY IF EXISTS``, so every step can run again. Each statement runs
  under a short ``lock_timeout`` and is retried a few times when it times out
  (a statement queued behind a long transaction would queue every query on the
  table behind itself); an INVALID index a failed concurrent build left is
  dropped before the build is tried again. The run is marked *incomplete* before
  its first statement and the mark is cleared with the bookkeeping in one
  transaction after its last: a run that stops half-way (a failing statement, a
  killed session) shows as ``incomplete`` in :func:`migration_status`; migrate
  runs it again from the top to completion (an interrupted rollback too: it is
  applied again), or rollback undoes what it did.
* **A lock that dies with its holder.** Runs are serialised by a PostgreSQL
  advisory lock, not by yoyo's lock-table row that a crashed run leaves behind.
* **Edited migrations are refused.** yoyo hashes a migration's id, not its
  text; we record a SHA-256 of both files when applying and refuse to go on
  when an applied file has changed. Line endings do not count: a checkout
  with CRLF endings (git's autocrlf) is the same text, not an edit.
* **A database ahead of the checkout is refused.** A migration the database
  records but this checkout has no file for (an older checkout against a newer
  database) shows as ``unknown``, and migrate and rollback refuse to run: rolling
  back under it would leave the newer migration recorded on a schema without it.
* **Status only reads.** :func:`migration_status` runs plain SELECTs with no DDL
  and no lock, so it answers on a hot standby, for a role that may only read the
  bookkeeping, and while a migration run holds the lock.
* **Bookkeeping stays out of the application's schema.** yoyo's tables and ours
  live in the ``customer_dal_migrations`` schema; migrations run with the
  connection's own search_path.
* **Reversible or nothing.** A migration without a rollback file is an error.
* **A session of their own.** migrate and rollback hold a session-level
  advisory lock, and yoyo points its session's search_path at the bookkeeping
  schema, for the whole run; both end when their connections close (a killed
  run's too). Behind a transaction-mode pooler (PgBouncer's
  ``pool_mode = transaction``) a session is no such thing: the lock and the
  search_path would stay on a pooled server connection, holding off every later
  run and sending other clients' queries to the wrong schema. So with
  ``CUSTOMER_DAL_POOLER=transaction`` (or ``pooler="transaction"``) they refuse
  with one :class:`MigrationError` before connecting: run them against the
  server directly. Without the setting they refuse too, before taking the lock,
  when the connection shows a pooler in between (its backend pid, which a pooler
  makes up, is not the server's), unless the setting says ``session``.
  Transaction-scoped locks and settings could make them pooler-safe, but yoyo
  runs its own statements outside our transactions with the session's
  search_path, and a deploy tool can always reach the server: refusing is the
  change that cannot go subtly wrong. :func:`migration_status` only reads, with
  no lock and no setting, and works through any pooler.
* **Logged.** Each migration applied or rolled back is an INFO line, with its
  duration, on the ``customer_dal.migrations`` logger.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from yoyo import read_migrations
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import parse_uri
from yoyo.exceptions import BadMigration
from yoyo.migrations import read_sql_migration

from .db import POOLER_ENV, connect, describe, error_summary, pooler_mode, resolve_dsn, yoyo_url
from .errors import MigrationError, MigrationLockedError, translate
from .locks import statement_locks
from .resources import migrations_directory

__all__ = [
    "MigrationState",
    "PlannedMigration",
    "PlannedStatement",
    "migrate",
    "migration_plan",
    "migration_status",
    "rollback",
]

BOOKKEEPING_SCHEMA = "customer_dal_migrations"
# Any constant works, as long as every customer_dal process uses the same one.
_ADVISORY_LOCK_KEY = 0x637573745F64616C  # "cust_dal"
DEFAULT_LOCK_TIMEOUT = 60.0
_LOCK_POLL = 0.1

_log = logging.getLogger(__name__)

State = Literal["applied", "pending", "edited", "unknown", "incomplete"]
Direction = Literal["apply", "rollback"]

# Statements of a non-transactional migration wait this long for a lock, and
# are tried this many times, the pause growing by LOCK_RETRY_PAUSE each time.
STATEMENT_LOCK_TIMEOUT = 5.0
STATEMENT_ATTEMPTS = 5
LOCK_RETRY_PAUSE = 1.0


@dataclass(frozen=True)
class MigrationState:
    """One migration and where the database stands with it.

    ``unknown`` is a migration the database records but no file here describes;
    ``incomplete`` a non-transactional one whose run stopped half-way.
    """

    id: str
    state: State


def migrate(
    dsn: str | None = None,
    *,
    directory: Path | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    pooler: str | None = None,
) -> list[str]:
    """Apply every pending migration, oldest first; return their ids.

    Re-running applies nothing and returns ``[]``. Each migration is applied in
    its own transaction: when one fails, the ones before it stay applied and it
    leaves no trace. A non-transactional one (``-- transactional: false``) that
    fails stays ``incomplete``; the next run applies it again from the top (an
    interrupted rollback of one too: it comes first). Raises
    :class:`MigrationError`, before applying anything, when an applied
    migration's file was edited or the database records a migration this
    checkout does not know, and before connecting when
    ``pooler`` (else ``$CUSTOMER_DAL_POOLER``) is ``transaction``.
    """
    _refuse_transaction_pooler(pooler)
    migrations = _read(directory)
    with _locked_backend(dsn, lock_timeout, pooler) as backend:
        recorded = _recorded(backend.connection)
        _refuse_drift(migrations, recorded)
        incomplete = _incomplete(backend.connection)
        # An interrupted rollback leaves its migration recorded as applied, so
        # yoyo would not apply it again: it comes first.
        pending = [m for m in migrations if m.id in incomplete and m.id in recorded]
        pending += backend.to_apply(migrations)
        for migration in pending:
            _run(backend, migration, "apply", recorded=migration.id in recorded)
        return [migration.id for migration in pending]


def rollback(
    dsn: str | None = None,
    steps: int = 1,
    *,
    directory: Path | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    pooler: str | None = None,
) -> list[str]:
    """Roll back the newest ``steps`` applied migrations; return their ids, newest first.

    Migrations that depend on a rolled-back one come first in yoyo's reversed
    dependency order, so they are always included. With nothing applied this
    returns ``[]``. Refuses, as :func:`migrate` does, an edited or unknown migration
    and a transaction-mode pooler. A non-transactional migration whose apply was
    interrupted counts as the newest: rolling it back removes what it left.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}")
    _refuse_transaction_pooler(pooler)
    migrations = _read(directory)
    with _locked_backend(dsn, lock_timeout, pooler) as backend:
        recorded = _recorded(backend.connection)
        _refuse_drift(migrations, recorded)
        incomplete = _incomplete(backend.connection)
        half_applied = [m for m in migrations if m.id in incomplete and m.id not in recorded]
        newest_first = [*half_applied, *backend.to_rollback(migrations)][:steps]
        for migration in newest_first:
            _run(backend, migration, "rollback", recorded=migration.id in recorded)
        return [migration.id for migration in newest_first]


def migration_status(
    dsn: str | None = None, *, directory: Path | None = None, pooler: str | None = None
) -> list[MigrationState]:
    """Every migration file, oldest first, as applied, pending, edited since applied or
    incomplete (a non-transactional run that stopped half-way); then each migration the
    database records that no file here describes, as unknown.

    Read-only: plain SELECTs on one connection, no DDL and no lock (see the module
    docstring). While a migration run is under way it shows what that run has
    committed so far. A never-migrated database has every migration pending.
    It needs no session of its own, so it works through a transaction-mode pooler.
    """
    migrations = _read(directory)
    with connect(dsn, pooler=pooler) as connection:
        recorded = _recorded(connection)
        incomplete = _incomplete(connection)
    return _states(migrations, recorded, incomplete)


@dataclass(frozen=True)
class PlannedStatement:
    """One statement of a pending migration, and the table locks it takes."""

    sql: str
    locks: list[str]


@dataclass(frozen=True)
class PlannedMigration:
    """A migration :func:`migrate` would apply: its statements, and whether they run
    in one transaction (their locks held until it commits) or each on its own."""

    id: str
    transactional: bool
    statements: list[PlannedStatement]


def migration_plan(
    dsn: str | None = None, *, directory: Path | None = None, pooler: str | None = None
) -> list[PlannedMigration]:
    """What :func:`migrate` would apply, in order, changing nothing.

    Reads as :func:`migration_status` does (plain SELECTs, no lock, no DDL) and
    refuses, as :func:`migrate` does, a database with an edited or unknown
    migration. An incomplete migration is listed: migrate runs it again. The
    locks are read from each statement's text (:mod:`customer_dal.locks`).
    """
    migrations = _read(directory)
    with connect(dsn, pooler=pooler) as connection:
        recorded = _recorded(connection)
        incomplete = _incomplete(connection)
    _refuse_drift(migrations, recorded)
    pending = [m for m in migrations if m.id in incomplete and m.id in recorded]
    pending += [m for m in migrations if m.id not in recorded]
    return [
        PlannedMigration(
            migration.id,
            migration.use_transactions,
            [PlannedStatement(s, statement_locks(s)) for s in statements(migration, "apply")],
        )
        for migration in pending
    ]


def _refuse_transaction_pooler(pooler: str | None) -> None:
    """Refuse to run where the lock and search_path would outlive the run (see above)."""
    if pooler_mode(pooler) == "transaction":
        raise MigrationError(
            "migrations need a session of their own: run them against the server directly, "
            f"not through a transaction-mode pooler ({POOLER_ENV}=transaction)"
        )


def _read(directory: Path | None) -> Any:
    """Read the migrations; check each is reversible, and each non-transactional one
    keeps the discipline that lets it run again after an interruption."""
    directory = directory or migrations_directory()
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    for path in sorted(directory.glob("*.sql")):
        if path.name.endswith(".rollback.sql"):
            continue
        if not _rollback_path(path).is_file():
            missing = _rollback_path(path).name
            raise MigrationError(
                f"{path.name} has no {missing}: every migration must be reversible"
            )
    migrations = read_migrations(str(directory))
    for migration in migrations:
        try:
            migration.load()
        except BadMigration as exc:
            raise MigrationError(f"cannot read {Path(migration.path).name}: {exc}") from exc
        if not migration.use_transactions:
            for direction in ("apply", "rollback"):
                for statement in statements(migration, direction):
                    _check_repeatable(Path(migration.path).name, direction, statement)
    return migrations


def statements(migration: Any, direction: Direction) -> list[str]:
    """The statements of a migration's file (``apply``) or its rollback file, in order."""
    path = Path(migration.path)
    _, _, found = read_sql_migration(str(path if direction == "apply" else _rollback_path(path)))
    return [statement.strip() for statement in found]


# What a non-transactional file may not do: each step must be safe to run again.
_UNREPEATABLE = (
    (
        re.compile(
            r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\b(?!\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\b)", re.I
        ),
        "create indexes with CREATE INDEX CONCURRENTLY IF NOT EXISTS",
    ),
    (
        re.compile(r"\bDROP\s+INDEX\b(?!\s+CONCURRENTLY\s+IF\s+EXISTS\b)", re.I),
        "drop indexes with DROP INDEX CONCURRENTLY IF EXISTS",
    ),
)


def _check_repeatable(name: str, direction: Direction, statement: str) -> None:
    for pattern, rule in _UNREPEATABLE:
        if pattern.search(_without_comments(statement)):
            where = name if direction == "apply" else _rollback_path(Path(name)).name
            raise MigrationError(
                f"{where} runs outside a transaction, so each statement must be safe to run "
                f"again after an interruption: {rule} ({_first_line(statement)})"
            )


def _without_comments(statement: str) -> str:
    return re.sub(r"--[^\n]*", "", statement)


def _first_line(statement: str) -> str:
    """A statement's first line of SQL, to name it in one line."""
    lines = [line.strip() for line in _without_comments(statement).splitlines()]
    return next(line for line in lines if line)


def _rollback_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".sql") + ".rollback.sql")


def _checksum(migration: Any) -> str:
    """What we record: a SHA-256 of the migration and its rollback (an edit to either
    is caught) with line endings normalised to LF (a CRLF checkout is the same text)."""
    up, down = _texts(migration)
    return _sha256(_lf(up), _lf(down))


def _accepted_checksums(migration: Any) -> set[str]:
    """Every recorded checksum that means "these files, as applied".

    Ours (:func:`_checksum`), and what earlier versions recorded, a SHA-256 of
    the raw bytes: of this checkout, or of a CRLF checkout of the same text (a
    database migrated from Windows, checked from Linux).
    """
    up, down = _texts(migration)
    lf_up, lf_down = _lf(up), _lf(down)
    crlf = lf_up.replace(b"\n", b"\r\n"), lf_down.replace(b"\n", b"\r\n")
    return {_sha256(lf_up, lf_down), _sha256(up, down), _sha256(*crlf)}


def _texts(migration: Any) -> tuple[bytes, bytes]:
    path = Path(migration.path)
    return path.read_bytes(), _rollback_path(path).read_bytes()


def _lf(text: bytes) -> bytes:
    return text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _sha256(up: bytes, down: bytes) -> str:
    return hashlib.sha256(up + b"\0" + down).hexdigest()


class _Backend(PostgresqlPsycopgBackend):  # type: ignore[misc]
    """yoyo's psycopg 3 backend with its tables in :data:`BOOKKEEPING_SCHEMA`.

    The session's search_path points at the bookkeeping schema, as yoyo's own
    ``?schema=`` option would; :func:`_run` switches to the application's
    search_path (captured on connect) while a migration's statements run.
    """

    app_search_path = ""

    def init_connection(self, connection: psycopg.Connection[Any]) -> None:
        if not self.app_search_path:
            [(self.app_search_path,)] = connection.execute("SHOW search_path").fetchall()
        connection.execute("SELECT set_config('search_path', %s, false)", [BOOKKEEPING_SCHEMA])


def _set_local_search_path(backend: _Backend, search_path: str) -> None:
    backend.connection.execute("SELECT set_config('search_path', %s, true)", [search_path])


@contextmanager
def _locked_backend(
    dsn: str | None, lock_timeout: float, pooler: str | None = None
) -> Iterator[_Backend]:
    """A yoyo backend, opened while this process holds the migration lock.

    Both connections are closed on the way out, which ends the lock and the
    backend's session-level search_path with them (see the module docstring).
    """
    resolved = resolve_dsn(dsn)
    with connect(resolved, pooler=pooler) as lock_connection, ExitStack() as cleanup:
        try:
            _refuse_undeclared_pooler(lock_connection, resolved, pooler)
            _acquire_lock(lock_connection, resolved, lock_timeout)
            _create_bookkeeping(lock_connection)
            backend = _Backend(parse_uri(yoyo_url(resolved)), "_yoyo_migration")
            cleanup.callback(backend.connection.close)
            backend.init_database()
        except psycopg.Error as exc:  # a hot standby, a role without CREATE, ...
            raise translate(exc, lock_connection) from exc
        yield backend
    # Closing lock_connection releases the advisory lock; so does a killed process.


def _refuse_undeclared_pooler(
    connection: psycopg.Connection[Any], dsn: str, pooler: str | None
) -> None:
    """Refuse a pooler nobody declared, before any session state is made.

    A pooler hands the client a backend pid of its own making (it cannot give
    out the pid of a server connection it shares), so a mismatch with the
    server's own ``pg_backend_pid()`` means one sits in between. A plain TCP
    proxy passes the server's through and is not taken for one.
    """
    if pooler_mode(pooler) == "session":
        return  # declared: each client keeps one server session, as migrations need
    [(server_pid,)] = connection.execute("SELECT pg_backend_pid()").fetchall()
    if server_pid != connection.info.backend_pid:
        raise MigrationError(
            f"{describe(dsn)} is reached through a connection pooler (the server's backend "
            "pid is not the one the connection was given), and migrations need a session of "
            "their own: run them against the server directly, or set "
            f"{POOLER_ENV}=session if the pooler keeps each client on one server connection"
        )


def _create_bookkeeping(connection: psycopg.Connection[Any]) -> None:
    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {BOOKKEEPING_SCHEMA}")
    connection.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {BOOKKEEPING_SCHEMA}.migration_checksum (
            migration_id text PRIMARY KEY,
            sha256       text NOT NULL,
            applied_at   timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # Non-transactional runs under way or stopped half-way (see the module docstring).
    connection.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {BOOKKEEPING_SCHEMA}.migration_incomplete (
            migration_id text PRIMARY KEY,
            direction    text NOT NULL CHECK (direction IN ('apply', 'rollback')),
            started_at   timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def _acquire_lock(connection: psycopg.Connection[Any], dsn: str, timeout: float) -> None:
    """Take the migration lock, trying every :data:`_LOCK_POLL` seconds until ``timeout``.

    Polled, not waited for in ``pg_advisory_lock``: a session waiting inside a
    statement holds a snapshot, and ``CREATE INDEX CONCURRENTLY`` in the run
    holding the lock would wait for that snapshot to go, while the waiter waits
    for the run: neither would move until the waiter gave up.
    """
    deadline = time.monotonic() + timeout
    while True:
        [(locked,)] = connection.execute(
            "SELECT pg_try_advisory_lock(%s)", [_ADVISORY_LOCK_KEY]
        ).fetchall()
        if locked:
            return
        if time.monotonic() >= deadline:
            raise MigrationLockedError(
                f"another migration run holds the lock on {describe(dsn)}; "
                f"gave up after {timeout:g} s"
            )
        time.sleep(_LOCK_POLL)


# yoyo's applied-migrations table (its internal schema v2) with our checksums.
# A LEFT JOIN: an applied migration without a checksum row shows as edited,
# which is the safe reading of bookkeeping we did not write.
_RECORDED_SQL = f"""
    SELECT m.migration_id, c.sha256
    FROM {BOOKKEEPING_SCHEMA}._yoyo_migration AS m
    LEFT JOIN {BOOKKEEPING_SCHEMA}.migration_checksum AS c USING (migration_id)
    ORDER BY m.applied_at_utc, m.migration_id
"""  # noqa: S608 - the schema is a constant of ours, not input


def _recorded(connection: psycopg.Connection[Any]) -> dict[str, str | None]:
    """The migrations the database records as applied, oldest first, with their checksums.

    Plain SELECTs, so this works on a hot standby and with SELECT privilege alone.
    A database that was never migrated has no bookkeeping tables: nothing recorded.
    """
    try:
        [(migrated,)] = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL", [f"{BOOKKEEPING_SCHEMA}._yoyo_migration"]
        ).fetchall()
        rows = connection.execute(_RECORDED_SQL).fetchall() if migrated else []
    except psycopg.Error as exc:  # a role without USAGE on the schema, say
        raise translate(exc, connection) from exc
    return dict(rows)


def _incomplete(connection: psycopg.Connection[Any]) -> dict[str, str]:
    """Non-transactional runs that started and did not finish: id -> direction."""
    try:
        [(tracked,)] = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL", [f"{BOOKKEEPING_SCHEMA}.migration_incomplete"]
        ).fetchall()
        rows = connection.execute(_INCOMPLETE_SQL).fetchall() if tracked else []
    except psycopg.Error as exc:
        raise translate(exc, connection) from exc
    return dict(rows)


_INCOMPLETE_SQL = f"SELECT migration_id, direction FROM {BOOKKEEPING_SCHEMA}.migration_incomplete"  # noqa: S608 - our constant


def _state(
    migration: Any, recorded: dict[str, str | None], incomplete: dict[str, str] | None = None
) -> State:
    if migration.id in (incomplete or {}):
        return "incomplete"
    if migration.id not in recorded:
        return "pending"
    return "applied" if recorded[migration.id] in _accepted_checksums(migration) else "edited"


def _unknown(migrations: Any, recorded: dict[str, str | None]) -> list[str]:
    """Recorded migrations that no file here describes: the database is ahead of us."""
    known = {migration.id for migration in migrations}
    return [migration_id for migration_id in recorded if migration_id not in known]


def _states(
    migrations: Any, recorded: dict[str, str | None], incomplete: dict[str, str]
) -> list[MigrationState]:
    files = [MigrationState(m.id, _state(m, recorded, incomplete)) for m in migrations]
    return files + [MigrationState(i, "unknown") for i in _unknown(migrations, recorded)]


def _refuse_drift(migrations: Any, recorded: dict[str, str | None]) -> None:
    """Refuse to change a database whose history this checkout does not match."""
    unknown = _unknown(migrations, recorded)
    if unknown:
        raise MigrationError(
            "the database has migrations this checkout does not know: "
            f"{', '.join(unknown)}; update the checkout"
        )
    for migration in migrations:
        if _state(migration, recorded) == "edited":
            raise MigrationError(
                f"{Path(migration.path).name} was edited after it was applied; "
                "restore it and add a new migration instead"
            )


def _run(
    backend: _Backend, migration: Any, direction: Direction, *, recorded: bool = False
) -> None:
    """Run one migration and its bookkeeping; log it when done.

    ``recorded`` says whether yoyo records it as applied now (an interrupted
    non-transactional run can be re-run in either direction from either state).
    """
    started = time.perf_counter()
    if migration.use_transactions:
        _run_in_transaction(backend, migration, direction)
    else:
        _run_outside_transaction(backend, migration, direction, recorded=recorded)
    _log.info(
        "%s %s in %.3f s",
        "applied" if direction == "apply" else "rolled back",
        migration.id,
        time.perf_counter() - started,
    )


def _run_in_transaction(backend: _Backend, migration: Any, direction: Direction) -> None:
    """The statements and the bookkeeping in a single transaction."""
    try:
        with backend.transaction():
            _set_local_search_path(backend, backend.app_search_path)
            migration.process_steps(backend, direction)
            _set_local_search_path(backend, BOOKKEEPING_SCHEMA)
            _book(backend, migration, direction, recorded=direction == "rollback")
    except psycopg.Error as exc:
        verb = "applying" if direction == "apply" else "rolling back"
        raise MigrationError(
            f"{verb} {Path(migration.path).name} failed, nothing was changed: {error_summary(exc)}"
        ) from exc


def _book(backend: _Backend, migration: Any, direction: Direction, *, recorded: bool) -> None:
    """yoyo's log and applied-row, our checksum and the incomplete mark, in the
    caller's transaction, with the bookkeeping schema on the search_path."""
    backend.log_migration(migration, direction)
    connection = backend.connection
    if direction == "apply":
        if not recorded:
            backend.mark_one(migration, log=False)
        connection.execute(
            "INSERT INTO migration_checksum (migration_id, sha256) VALUES (%s, %s) "
            "ON CONFLICT (migration_id) DO UPDATE SET sha256 = excluded.sha256",
            [migration.id, _checksum(migration)],
        )
    else:
        if recorded:
            backend.unmark_one(migration, log=False)
        connection.execute("DELETE FROM migration_checksum WHERE migration_id = %s", [migration.id])
    connection.execute("DELETE FROM migration_incomplete WHERE migration_id = %s", [migration.id])


def _run_outside_transaction(
    backend: _Backend, migration: Any, direction: Direction, *, recorded: bool
) -> None:
    """Mark the run incomplete, run each statement on its own, then book it atomically."""
    name = Path(migration.path).name
    connection = backend.connection
    with backend.transaction():
        connection.execute(
            "INSERT INTO migration_incomplete (migration_id, direction) VALUES (%s, %s) "
            "ON CONFLICT (migration_id) DO UPDATE "
            "SET direction = excluded.direction, started_at = now()",
            [migration.id, direction],
        )
    todo = statements(migration, direction)
    # Session settings, as each statement is a transaction of its own; the
    # statements may change them too (SET, set_config): all are put back below.
    connection.execute("SELECT set_config('search_path', %s, false)", [backend.app_search_path])
    timeout = f"{int(STATEMENT_LOCK_TIMEOUT * 1000)}ms"
    connection.execute("SELECT set_config('lock_timeout', %s, false)", [timeout])
    try:
        for number, statement in enumerate(todo, start=1):
            _execute_retrying(connection, statement)
            _log.debug("%s: statement %d of %d done", name, number, len(todo))
    except psycopg.Error as exc:
        verb = "applying" if direction == "apply" else "rolling back"
        again = "migrate or rollback" if direction == "apply" else "rollback"
        raise MigrationError(
            f"{verb} {name} stopped at statement {number} of {len(todo)} "
            f"({_first_line(statement)}): {error_summary(exc)}; the statements before it "
            f"are done and {migration.id} is incomplete: fix the cause and run {again} again"
        ) from exc
    finally:
        _reset_session(backend)
    with backend.transaction():
        _book(backend, migration, direction, recorded=recorded)


def _reset_session(backend: _Backend) -> None:
    """Undo the session settings a non-transactional migration made or changed; a
    session the migration lost (a terminated backend) has none left to undo."""
    connection = backend.connection
    if connection.closed:
        return
    connection.execute("RESET ALL")
    backend.init_connection(connection)


# CREATE INDEX CONCURRENTLY IF NOT EXISTS <name>: the index a retry must check.
_CONCURRENT_INDEX = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\s+([\w.\"]+)", re.I
)


def _execute_retrying(connection: psycopg.Connection[Any], statement: str) -> None:
    """Run one statement in its own transaction; when it gave up waiting for a lock,
    pause and try again, up to :data:`STATEMENT_ATTEMPTS` times."""
    attempt = 1
    while True:
        _drop_invalid_index(connection, statement)
        try:
            connection.execute(statement)
            return
        except pg_errors.LockNotAvailable:
            if attempt == STATEMENT_ATTEMPTS:
                raise
        _log.info("%s: lock not granted, attempt %d", _first_line(statement), attempt)
        time.sleep(LOCK_RETRY_PAUSE * attempt)
        attempt += 1


def _drop_invalid_index(connection: psycopg.Connection[Any], statement: str) -> None:
    """A concurrent build that failed leaves its index INVALID (it takes writes,
    answers no query); IF NOT EXISTS would keep it so: drop it first."""
    match = _CONCURRENT_INDEX.search(_without_comments(statement))
    if not match:
        return
    name = match.group(1)
    invalid = connection.execute(
        "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name]
    ).fetchone()
    if invalid and invalid[0]:
        _log.info("dropping the INVALID index %s a failed build left", name)
        parts = [part.strip('"') for part in name.split(".")]
        drop = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(*parts))
        connection.execute(drop)
