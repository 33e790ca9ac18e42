"""The ``customer-dal`` command (also ``python -m customer_dal``); the Makefile wraps it.

Expected failures print one line, ``customer-dal: error: ...``, and exit 1:
never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import embedded, migrations
from .bench import run_bench
from .bulk import Rejection, bulk_import
from .csv_io import RejectsFile, export_csv, read_customer_rows
from .customers import CustomerRepository
from .db import connect, resolve_dsn
from .errors import DataAccessError
from .progress import Progress
from .seed import fake_customers

__all__ = ["main"]

_MIGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Every migration starts by bounding its waits, as squawk (make lint) asks.
_TIMEOUTS = "SET LOCAL lock_timeout = '10s';\n\nSET LOCAL statement_timeout = '15min';\n\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except DataAccessError as exc:
        print(f"customer-dal: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="customer-dal",
        description="Customers on PostgreSQL: migrations and tools. The database is --dsn, "
        "else $DATABASE_URL, else the embedded server in ./.pgdata.",
    )
    parser.add_argument("--dsn", help="database URL or libpq key=value string")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    cmd = sub.add_parser("migrate", help="apply pending migrations")
    cmd.set_defaults(command=_migrate)

    cmd = sub.add_parser("rollback", help="roll back the newest migration(s)")
    cmd.add_argument("--steps", type=_positive_int, default=1, help="how many (default 1)")
    cmd.set_defaults(command=_rollback)

    cmd = sub.add_parser("status", help="list migrations; exit 1 if any is pending or edited")
    cmd.set_defaults(command=_status)

    cmd = sub.add_parser("search", help="search customers and print a table")
    cmd.add_argument("query")
    cmd.add_argument("--limit", type=_positive_int, default=20)
    cmd.add_argument("--inactive", action="store_true", help="include soft-deleted customers")
    cmd.set_defaults(command=_search)

    cmd = sub.add_parser("import", help="import customers from a CSV file (all or nothing)")
    cmd.add_argument("file", type=Path)
    cmd.add_argument(
        "--skip-invalid",
        action="store_true",
        help="write the good rows; put the refused ones in FILE.rejects.csv",
    )
    cmd.set_defaults(command=_import)

    cmd = sub.add_parser("export", help="export customers to a CSV file")
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--active-only", action="store_true")
    cmd.set_defaults(command=_export)

    cmd = sub.add_parser("seed", help="add realistic fake customers (deterministic)")
    cmd.add_argument("--count", type=_positive_int, required=True)
    cmd.add_argument("--seed", type=int, default=0)
    cmd.set_defaults(command=_seed)

    cmd = sub.add_parser("bench", help="measure search, calls and import against baselines")
    cmd.add_argument("--rows", type=_positive_int, default=100_000)
    cmd.add_argument("--calls", type=_positive_int, default=2000)
    cmd.add_argument("--repeats", type=_positive_int, default=5)
    cmd.set_defaults(command=_bench)

    cmd = sub.add_parser("new-migration", help="create the next numbered migration pair")
    cmd.add_argument("name", help="lower_snake_case description, e.g. add_customer_tags")
    cmd.add_argument("--directory", type=Path, default=Path("migrations"))
    cmd.set_defaults(command=_new_migration)

    cmd = sub.add_parser("dsn", help="print the DSN in use (starting the embedded server)")
    cmd.set_defaults(command=_dsn)

    cmd = sub.add_parser("psql", help="open psql on the database (extra arguments go to psql)")
    cmd.add_argument("psql_args", nargs=argparse.REMAINDER)
    cmd.set_defaults(command=_psql)

    cmd = sub.add_parser("db-stop", help="stop the embedded server")
    cmd.set_defaults(command=_db_stop)
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _migrate(args: argparse.Namespace) -> int:
    applied = migrations.migrate(args.dsn)
    for migration_id in applied:
        print(f"applied {migration_id}")
    if not applied:
        print("nothing to apply: the schema is up to date")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    rolled_back = migrations.rollback(args.dsn, steps=args.steps)
    for migration_id in rolled_back:
        print(f"rolled back {migration_id}")
    if not rolled_back:
        print("nothing to roll back: no migration is applied")
    return 0


def _status(args: argparse.Namespace) -> int:
    states = migrations.migration_status(args.dsn)
    for state in states:
        print(f"{state.state:<8} {state.id}")
    return 0 if all(state.state == "applied" for state in states) else 1


def _search(args: argparse.Namespace) -> int:
    with connect(args.dsn) as conn:
        found = CustomerRepository(conn).search(
            args.query, include_inactive=args.inactive, limit=args.limit
        )
    columns = ("id", "name", "display_phones", "email", "is_active")
    rows = [columns, *[tuple(str(getattr(c, column) or "") for column in columns) for c in found]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"({len(found)} customer{'' if len(found) == 1 else 's'})")
    return 0


def _import(args: argparse.Namespace) -> int:
    path: Path = args.file
    progress = Progress(f"importing {path.name}")
    rejects = RejectsFile(path.with_suffix(".rejects.csv")) if args.skip_invalid else None

    def report(rejection: Rejection) -> None:
        if rejects:
            rejects.write(rejection.line, rejection.values, rejection.reason)
        else:
            print(f"{path.name}, line {rejection.line}: {rejection.reason}", file=sys.stderr)

    try:
        with connect(args.dsn) as conn:
            result = bulk_import(
                conn,
                lambda: read_customer_rows(path),
                skip_invalid=args.skip_invalid,
                on_reject=report,
                on_progress=progress,
            )
    finally:
        progress.finish()
        if rejects:
            rejects.close()
    print(f"imported {result.imported:,} customers from {path.name}")
    if rejects and result.rejected:
        print(f"refused {result.rejected:,} rows: see {rejects.path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    with connect(args.dsn) as conn:
        rows = export_csv(conn, args.file, active_only=args.active_only)
    print(f"exported {rows:,} customers to {args.file}")
    return 0


def _seed(args: argparse.Namespace) -> int:
    progress = Progress("seeding")
    try:
        with connect(args.dsn) as conn:
            result = bulk_import(
                conn, lambda: fake_customers(args.count, args.seed), on_progress=progress
            )
    finally:
        progress.finish()
    print(f"seeded {result.imported:,} customers")
    return 0


def _bench(args: argparse.Namespace) -> int:
    run_bench(args.dsn, rows=args.rows, calls=args.calls, repeats=args.repeats)
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
    print(resolve_dsn(args.dsn))
    return 0


def _psql(args: argparse.Namespace) -> int:
    executable = embedded.psql_executable()
    extra: list[str] = args.psql_args
    if extra[:1] == ["--"]:
        extra = extra[1:]
    os.execv(executable, [executable, resolve_dsn(args.dsn), *extra])  # noqa: S606 - no shell wanted
    return 0  # not reached: execv replaces this process


def _db_stop(args: argparse.Namespace) -> int:
    if embedded.stop_embedded():
        print(f"stopped the embedded server in {embedded.data_directory()}")
    else:
        print("the embedded server was not running")
    return 0
