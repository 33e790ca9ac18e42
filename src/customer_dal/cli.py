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
from .db import resolve_dsn
from .errors import DataAccessError

__all__ = ["main"]

_MIGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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


def _new_migration(args: argparse.Namespace) -> int:
    name: str = args.name
    directory: Path = args.directory
    if not _MIGRATION_NAME.match(name):
        raise DataAccessError(f"migration name {name!r} must be lower_snake_case")
    numbers = [int(path.name[:4]) for path in directory.glob("[0-9][0-9][0-9][0-9]_*.sql")]
    stem = f"{max(numbers, default=0) + 1:04d}_{name}"
    previous = sorted(
        path.stem
        for path in directory.glob("[0-9][0-9][0-9][0-9]_*.sql")
        if not path.name.endswith(".rollback.sql")
    )
    depends = f"-- depends: {previous[-1]}\n" if previous else ""
    up = directory / f"{stem}.sql"
    down = directory / f"{stem}.rollback.sql"
    up.write_text(f"-- {name.replace('_', ' ').capitalize()}: say what and why.\n{depends}\n")
    down.write_text(f"-- Undo {stem}, statement by statement in reverse order.\n\n")
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
