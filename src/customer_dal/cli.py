"""The ``customer-dal`` command (also ``python -m customer_dal``); the Makefile wraps it.

The rules every command keeps:

* **One line, never a traceback**, for whatever a user can cause: a bad
  argument, file or DSN, an unreachable or unmigrated database, a lost
  connection. It reads ``customer-dal: error: ...`` on stderr and the exit
  code is 1 (2 for a usage error, as argparse has it). ``--debug`` (or
  ``CUSTOMER_DAL_DEBUG=1``) lets the exception through, traceback and all.
* **Ctrl-C** says what became of the work (``interrupted, nothing was
  written`` for import and seed, whose one transaction rolls back) and exits 130.
* **The target is named first.** A command that touches a database prints
  ``database: user@host:port/dbname`` (or ``database: embedded <data dir>``)
  on stderr before it does anything there. Passwords are never printed, and
  psql gets its password through the environment, not its argument list.
  ``search`` and ``export`` only read: with ``DATABASE_REPLICA_URL`` set they
  read from that hot standby (a ``reads from:`` line names it), or from the
  database, with a warning, when the standby does not answer.
* **Stored text cannot take over the terminal.** Control characters in what
  the CLI prints (search results, import reasons, errors) are shown escaped
  (``\x1b``, ``\n``): a row written by hand in SQL cannot clear the screen or
  break a table.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from pydantic import ValidationError

from . import embedded, migrations
from .bench import run_bench
from .bulk import Rejection, bulk_import, explain_validation_error
from .csv_io import (
    DELIMITERS,
    RejectsFile,
    check_export_target,
    check_readable,
    export_csv,
    read_customer_rows,
)
from .customers import CustomerRepository
from .db import (
    configured_dsn,
    configured_replica_dsn,
    connect,
    describe,
    describe_target,
    split_password,
)
from .errors import DataAccessError, DatabaseUnavailableError, translate
from .models import CustomerSearch
from .progress import Progress
from .schema_dump import dump_schema
from .seed import fake_customers

__all__ = ["main"]

DEBUG_ENV = "CUSTOMER_DAL_DEBUG"
_MIGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Every migration starts by bounding its waits, as squawk (make lint) asks.
_TIMEOUTS = "SET LOCAL lock_timeout = '10s';\n\nSET LOCAL statement_timeout = '15min';\n\n"
# What a user can cause; anything else is a bug, and its traceback is the report.
_EXPECTED = (DataAccessError, ValidationError, psycopg.Error, OSError)
_NOTHING_WRITTEN = "interrupted, nothing was written"
_NOTHING_EXPORTED = "interrupted, nothing was exported: an earlier file is left as it was"
# Refused rows listed on stderr; the rest are counted (and all are in the rejects file).
_SHOWN_REFUSALS = 50
# Unicode category Cc, the line and paragraph separators, and the bidirectional
# embeddings, overrides and isolates: text that moves the cursor, clears the
# screen, breaks a line or reorders what follows it on the line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MIGRATION_INTERRUPTED = (
    "interrupted: the migration in progress was rolled back (a non-transactional one is left "
    "incomplete: migrate again to finish it), any before it stay applied; "
    "run customer-dal status to see where the database stands"
)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        return command(args)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        # A CommitInterrupted says more than the command's default.
        _say(str(exc) or args.interrupted)
        return 130
    except _EXPECTED as exc:
        if debug:
            raise
        _say(f"error: {_one_line(exc)}")
        return 1


def _say(message: str) -> None:
    print(printable(f"customer-dal: {message}"), file=sys.stderr)


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\n``, ``\\u202e``), for a
    terminal: what a database or a file holds is shown, never obeyed."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _one_line(exc: BaseException) -> str:
    """What went wrong, in one line, in the library's words."""
    if isinstance(exc, ValidationError):
        return explain_validation_error(exc)
    if isinstance(exc, psycopg.Error):
        # A driver error a lower layer let through: still named by SQLSTATE.
        return str(translate(exc, None))
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {(exc.strerror or str(exc)).lower()}"
    return " ".join(str(exc).split()) or type(exc).__name__


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in the one-line form the other errors have."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("customer-dal").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"customer-dal: error: {where}{message} (see {self.prog} --help)\n")


_DEBUG_HELP = f"show the full traceback of a failure (also {DEBUG_ENV}=1)"

Add = Callable[..., argparse.ArgumentParser]


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="customer-dal",
        description="Customers on PostgreSQL: migrations and tools. The database is --dsn, "
        "else $DATABASE_URL, else the embedded server in ./.pgdata.",
    )
    parser.add_argument("--dsn", help="database URL or libpq key=value string")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    parser.set_defaults(interrupted=_NOTHING_WRITTEN)
    # The same options after the command: SUPPRESS keeps one given before it.
    database = _Parser(add_help=False)
    database.add_argument("--dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    debug = _Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    def add(name: str, text: str, *, touches_database: bool = True) -> argparse.ArgumentParser:
        parents = [database, debug] if touches_database else [debug]
        return sub.add_parser(name, help=text, parents=parents)

    _add_migration_commands(add)
    _add_customer_commands(add)
    _add_tool_commands(add)
    return parser


def _add_migration_commands(add: Add) -> None:
    cmd = add("migrate", "apply pending migrations")
    cmd.add_argument(
        "--plan",
        action="store_true",
        help="print each pending migration's SQL, whether it is transactional and the locks "
        "its statements take; change nothing",
    )
    cmd.set_defaults(command=_migrate, interrupted=_MIGRATION_INTERRUPTED)

    cmd = add("rollback", "roll back the newest migration(s)")
    cmd.add_argument("--steps", type=_positive_int, default=1, help="how many (default 1)")
    cmd.set_defaults(command=_rollback, interrupted=_MIGRATION_INTERRUPTED)

    cmd = add("status", "list migrations; exit 1 if any is pending, edited or incomplete")
    cmd.set_defaults(command=_status)

    cmd = add("schema", "print the schema pg_dump shows after every migration (sql/schema.sql)")
    cmd.add_argument("--output", type=Path, help="write it to this file instead")
    cmd.set_defaults(command=_schema)

    cmd = add("new-migration", "create the next numbered migration pair", touches_database=False)
    cmd.add_argument("name", help="lower_snake_case description, e.g. add_customer_tags")
    cmd.add_argument("--directory", type=Path, default=Path("migrations"))
    cmd.set_defaults(command=_new_migration)


def _add_customer_commands(add: Add) -> None:
    cmd = add("search", "search customers and print a table")
    cmd.add_argument("query")
    cmd.add_argument("--limit", type=_positive_int, default=20)
    cmd.add_argument("--inactive", action="store_true", help="include soft-deleted customers")
    cmd.set_defaults(command=_search)

    cmd = add("import", "import customers from a CSV file (all or nothing)")
    cmd.add_argument("file", type=Path)
    cmd.add_argument(
        "--skip-invalid",
        action="store_true",
        help="write the good rows; put the refused ones in FILE.rejects.csv",
    )
    _add_delimiter(cmd)
    cmd.set_defaults(command=_import)

    cmd = add("export", "export customers to a CSV file (it replaces FILE once complete)")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--active-only", action="store_true")
    cmd.add_argument(
        "--excel-safe",
        action="store_true",
        help="put ' before cells starting with = + - @ TAB or CR, so a spreadsheet shows them "
        "instead of running them as formulas (the file then no longer imports byte for byte)",
    )
    _add_delimiter(cmd)
    cmd.set_defaults(command=_export, interrupted=_NOTHING_EXPORTED)

    cmd = add("seed", "add realistic fake customers (deterministic)")
    cmd.add_argument("--count", type=_positive_int, required=True)
    cmd.add_argument("--seed", type=int, default=0)
    cmd.set_defaults(command=_seed)


def _add_tool_commands(add: Add) -> None:
    cmd = add("bench", "measure search, calls and import against baselines")
    cmd.add_argument("--rows", type=_positive_int, default=100_000)
    cmd.add_argument("--calls", type=_positive_int, default=2000)
    cmd.add_argument("--repeats", type=_positive_int, default=5)
    cmd.set_defaults(command=_bench)

    cmd = add("dsn", "print the DSN in use (starting the embedded server)")
    cmd.set_defaults(command=_dsn)

    cmd = add("psql", "open psql on the database (extra arguments go to psql)")
    cmd.add_argument("psql_args", nargs=argparse.REMAINDER)
    cmd.set_defaults(command=_psql)

    cmd = add("db-stop", "stop the embedded server", touches_database=False)
    cmd.set_defaults(command=_db_stop)


def _add_delimiter(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--delimiter",
        type=_delimiter,
        default=",",
        help="the column separator: ',' (the default), ';' or tab (also \\t)",
    )


def _delimiter(text: str) -> str:
    """``,``, ``;`` or a tab, which a shell makes hard to type: ``\\t`` and ``tab`` too."""
    delimiter = {"\\t": "\t", "tab": "\t"}.get(text.lower(), text)
    if delimiter not in DELIMITERS:
        raise argparse.ArgumentTypeError(f"expected ',', ';' or tab, got {text!r}")
    return delimiter


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _database(args: argparse.Namespace) -> str:
    """The DSN to use, named on stderr first: where a command acts is never a surprise."""
    configured = configured_dsn(args.dsn)
    print(f"database: {describe_target(configured)}", file=sys.stderr)
    return configured or embedded.embedded_dsn()


def _connect_for_reads(args: argparse.Namespace) -> psycopg.Connection[Any]:
    """A connection for a command that only reads (search, export): to the hot standby
    when ``$DATABASE_REPLICA_URL`` names one and it answers, else to the database."""
    primary = _database(args)
    replica = configured_replica_dsn()
    if replica is not None:
        print(f"reads from: {describe(replica)}", file=sys.stderr)
        try:
            return connect(replica)
        except DatabaseUnavailableError as exc:
            _say(f"warning: {exc}; reading from the primary")
    return connect(primary)


def _migrate(args: argparse.Namespace) -> int:
    if args.plan:
        return _plan(args)
    applied = migrations.migrate(_database(args))
    for migration_id in applied:
        print(f"applied {migration_id}")
    if not applied:
        print("nothing to apply: the schema is up to date")
    return 0


def _plan(args: argparse.Namespace) -> int:
    """Print what migrate would do: each pending migration's statements and their locks."""
    planned = migrations.migration_plan(_database(args))
    for migration in planned:
        how = (
            "transactional: its statements run in one transaction and hold their locks "
            "until it commits"
            if migration.transactional
            else "not transactional: each statement commits on its own, under lock_timeout, "
            "retried a few times"
        )
        print(f"-- migration {migration.id} ({how})\n")
        for number, statement in enumerate(migration.statements, start=1):
            locks = "; ".join(statement.locks) or "none on any table"
            print(f"-- statement {number} of {len(migration.statements)}, locks: {locks}")
            print(f"{statement.sql}\n")
    count = len(planned)
    print(f"-- {count} migration{'' if count == 1 else 's'} pending; nothing was changed")
    return 0


def _schema(args: argparse.Namespace) -> int:
    """The schema after every migration, dumped from a scratch database on the server."""
    dumped = dump_schema(_database(args))
    if args.output is None:
        print(dumped, end="")
    else:
        args.output.write_text(dumped, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    rolled_back = migrations.rollback(_database(args), steps=args.steps)
    for migration_id in rolled_back:
        print(f"rolled back {migration_id}")
    if not rolled_back:
        print("nothing to roll back: no migration is applied")
    return 0


def _status(args: argparse.Namespace) -> int:
    states = migrations.migration_status(_database(args))
    for state in states:
        print(f"{state.state:<8} {state.id}")
    return 0 if all(state.state == "applied" for state in states) else 1


def _search(args: argparse.Namespace) -> int:
    # Checked before connecting: a bad query needs no database to be refused.
    search = CustomerSearch(query=args.query, include_inactive=args.inactive, limit=args.limit)
    with _connect_for_reads(args) as conn:
        found = CustomerRepository(conn).search(
            search.query, include_inactive=search.include_inactive, limit=search.limit
        )
    columns = ("id", "name", "display_phones", "email", "is_active")
    rows = [
        columns,
        *[tuple(printable(str(getattr(c, column) or "")) for column in columns) for c in found],
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"({len(found)} customer{'' if len(found) == 1 else 's'})")
    return 0


def _import(args: argparse.Namespace) -> int:
    path: Path = args.file
    delimiter: str = args.delimiter
    check_readable(path, delimiter)  # a bad file or header needs no database to be refused
    with ExitStack() as stack:
        rejects = None
        if args.skip_invalid:
            rejects_path = path.with_suffix(".rejects.csv")
            rejects = stack.enter_context(RejectsFile(rejects_path, path, delimiter))
        progress = Progress(f"importing {path.name}")
        stack.callback(progress.finish)
        refusals = _Refusals(path, progress, rejects)
        stack.callback(refusals.summarise)  # before the error line, if there is one
        with connect(_database(args)) as conn:
            result = bulk_import(
                conn,
                lambda: read_customer_rows(path, delimiter),
                skip_invalid=args.skip_invalid,
                on_reject=refusals,
                on_progress=progress,
                on_phase=progress.phase,
            )
    print(printable(f"imported {result.imported:,} customers from {path.name}"))
    if rejects and result.rejected:
        print(printable(f"refused {result.rejected:,} rows: see {rejects.path}"))
    return 0


class _Refusals:
    """Hears each refused row (in line order): the first ones go to stderr, one line
    each, every one to the rejects file when there is one."""

    def __init__(self, source: Path, progress: Progress, rejects: RejectsFile | None) -> None:
        self._source = source
        self._progress = progress
        self._rejects = rejects
        self.count = 0

    def __call__(self, rejection: Rejection) -> None:
        self.count += 1
        if self._rejects:
            self._rejects.write(rejection.line, rejection.reason)
        if self.count <= _SHOWN_REFUSALS:
            self._tell(f"{self._source.name}, line {rejection.line}: {rejection.reason}")

    def summarise(self) -> None:
        """Count the refusals that were not shown, and say where they are."""
        hidden = self.count - _SHOWN_REFUSALS
        if hidden > 0:
            where = f": see {self._rejects.path}" if self._rejects else ""
            self._tell(f"... and {hidden:,} more{where}")

    def _tell(self, message: str) -> None:
        self._progress.clear()
        print(printable(message), file=sys.stderr)


def _export(args: argparse.Namespace) -> int:
    check_export_target(args.file)
    with _connect_for_reads(args) as conn:
        rows = export_csv(
            conn,
            args.file,
            active_only=args.active_only,
            excel_safe=args.excel_safe,
            delimiter=args.delimiter,
        )
    print(printable(f"exported {rows:,} customers to {args.file}"))
    return 0


def _seed(args: argparse.Namespace) -> int:
    progress = Progress("seeding")
    try:
        with connect(_database(args)) as conn:
            result = bulk_import(
                conn, lambda: fake_customers(args.count, args.seed), on_progress=progress
            )
    finally:
        progress.finish()
    print(f"seeded {result.imported:,} customers")
    return 0


def _bench(args: argparse.Namespace) -> int:
    run_bench(_database(args), rows=args.rows, calls=args.calls, repeats=args.repeats)
    return 0


def _new_migration(args: argparse.Namespace) -> int:
    name: str = args.name
    directory: Path = args.directory
    if not _MIGRATION_NAME.match(name):
        raise DataAccessError(f"migration name {name!r} must be lower_snake_case")
    existing = sorted(
        path.stem
        for path in directory.glob("[0-9][0-9][0-9][0-9]_*.sql")
        if not path.name.endswith(".rollback.sql")
    )
    stem = f"{int(existing[-1][:4]) + 1 if existing else 1:04d}_{name}"
    depends = f"-- depends: {existing[-1]}\n" if existing else ""
    up = directory / f"{stem}.sql"
    down = directory / f"{stem}.rollback.sql"
    up.write_text(
        f"-- {name.replace('_', ' ').capitalize()}: say what and why.\n{depends}\n{_TIMEOUTS}"
    )
    down.write_text(f"-- Undo {stem}, statement by statement in reverse order.\n\n{_TIMEOUTS}")
    print(f"created {up} and {down}")
    return 0


def _dsn(args: argparse.Namespace) -> int:
    print(_database(args))
    return 0


def _psql(args: argparse.Namespace) -> int:
    """Become psql on the database; its password travels in PGPASSWORD, because a
    process's arguments are visible to every user of the machine (ps, /proc)."""
    dsn, password = split_password(_database(args))
    executable = embedded.psql_executable()
    extra: list[str] = args.psql_args
    if extra[:1] == ["--"]:
        extra = extra[1:]
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password
    os.execve(executable, [executable, dsn, *extra], env)  # noqa: S606 - no shell wanted
    return 0  # not reached: execve replaces this process


def _db_stop(args: argparse.Namespace) -> int:
    if embedded.stop_embedded():
        print(f"stopped the embedded server in {embedded.data_directory()}")
    else:
        print("the embedded server was not running")
    return 0
