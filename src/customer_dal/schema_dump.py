"""``make schema``: ``sql/schema.sql``, the whole schema as ``pg_dump --schema-only``
prints it after every migration, so a reviewer sees each schema change as a diff.

The dump is taken from a scratch database migrated from nothing, with the embedded
wheel's ``pg_dump``, without owners and privileges (they belong to the
installation, not to the schema) and without customer_dal's bookkeeping schema.
Two kinds of line would make every regeneration a diff and are left out: the
server and pg_dump versions, and the random key of pg_dump's ``\\restrict`` guard.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import sql

from . import embedded
from .db import connect, resolve_dsn, split_password, with_database
from .migrations import BOOKKEEPING_SCHEMA, migrate

__all__ = ["comparable", "dump_schema", "pg_dump_executable"]

SCHEMA_DATABASE = "customer_dal_schema"

# Lines that change from one run or one server to the next, not with the schema.
_UNSTABLE = re.compile(r"^(?:\\restrict |\\unrestrict |-- Dumped from |-- Dumped by ).*\n", re.M)
# The one line the server's version decides (migration 0006): builtin C.UTF-8 on
# PostgreSQL 17+, ICU's root locale before.
_FOLD_COLLATION = re.compile(r"^(CREATE COLLATION \S+\.customer_dal_fold) \(.*\);$", re.M)


def pg_dump_executable() -> str:
    """The embedded wheel's pg_dump (it dumps any server from 9.2 on)."""
    # The wheel is loaded as embedded.py loads it (quietly: see there).
    return str(embedded._load_wheel().postgres_server.POSTGRES_BIN_PATH / "pg_dump")


def dump_schema(server: str | None = None) -> str:
    """The schema after every migration, from a scratch database on ``server``."""
    with _scratch(resolve_dsn(server)) as dsn:
        migrate(dsn)
        return _pg_dump(dsn)


def comparable(dump: str) -> str:
    """``dump`` with what differs between servers of different versions made equal:
    a dump from PostgreSQL 15 compares equal to the stored one from 18."""
    return _FOLD_COLLATION.sub(r"\1 (provider chosen by migration 0006);", dump)


def _pg_dump(dsn: str) -> str:
    without_password, password = split_password(dsn)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = password  # not in the argument list, which ps shows
    dumped = subprocess.run(  # noqa: S603 - the wheel's pg_dump, arguments of our own
        [
            pg_dump_executable(),
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            f"--exclude-schema={BOOKKEEPING_SCHEMA}",
            without_password,
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return _UNSTABLE.sub("", dumped)


@contextmanager
def _scratch(server: str) -> Iterator[str]:
    """A new, empty database on ``server``, dropped afterwards."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
        sql.Identifier(SCHEMA_DATABASE)
    )
    with connect(server) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SCHEMA_DATABASE)))
    try:
        yield with_database(server, SCHEMA_DATABASE)
    finally:
        with connect(server) as admin:
            admin.execute(drop)
