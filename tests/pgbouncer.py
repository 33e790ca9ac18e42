"""A real PgBouncer in transaction mode, in front of the server under test.

The ``pgbouncer`` fixture (one per test module; import ``pgbouncer_fixture``)
starts Debian's ``pgbouncer`` with :func:`customer_dal.local_pgbouncer.running_pgbouncer`
(the launcher ``make bench`` uses too), with ``pool_mode = transaction`` and a
pool of :data:`POOL_SIZE` server connections per database, so that many clients
share few server connections, as they do in production. Any database of the
test server is reachable through it under its own name (``Bouncer.through(dsn)``),
so a test's fresh database works too.

:func:`server_connections` says what fresh clients meet on each of PgBouncer's
server connections to a database: the proof that a command left nothing behind.

:func:`pid_inventing_proxy` imitates the one trait of a pooler that the
library detects (a made-up backend pid), for the tests that must cover that
path where PgBouncer is missing.

When the binary is missing the tests skip, saying so, unless
``CUSTOMER_DAL_REQUIRE_PGBOUNCER=1`` (set by ``.ci/run``) turns the skip into a
failure: CI must not pass by skipping them.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_dal.local_pgbouncer import (
    Bouncer,
    PgBouncerUnavailable,
    pgbouncer_binary,
    running_pgbouncer,
)

REQUIRE_ENV = "CUSTOMER_DAL_REQUIRE_PGBOUNCER"
# Small, so that a dozen clients share two server connections.
POOL_SIZE = 2


def require_pgbouncer() -> str:
    """The pgbouncer program; skip the test without it (fail when it is required)."""
    try:
        return pgbouncer_binary()
    except PgBouncerUnavailable as missing:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{missing}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(str(missing))


@pytest.fixture(scope="module", name="pgbouncer")
def pgbouncer_fixture(server_dsn: str) -> Iterator[Bouncer]:
    """PgBouncer in transaction mode in front of the test server, for one test module."""
    require_pgbouncer()
    with running_pgbouncer(server_dsn, pool_size=POOL_SIZE) as bouncer:
        yield bouncer


# The installed ``customer-dal`` entry point, beside this interpreter.
CUSTOMER_DAL = str(Path(sys.executable).with_name("customer-dal"))


def run_customer_dal(through: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``customer-dal`` command on ``through`` as a deployment behind PgBouncer
    would: a process of its own, with ``CUSTOMER_DAL_POOLER=transaction``."""
    return subprocess.run(
        [CUSTOMER_DAL, "--dsn", through, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CUSTOMER_DAL_POOLER": "transaction", "CUSTOMER_DAL_DEBUG": ""},
    )


# -- what a command left behind ---------------------------------------------------------

DEFAULT_SEARCH_PATH = '"$user", public'
# What PgBouncer itself SETs on a server connection to match each client's startup
# parameters (its track_extra_parameters and the always-tracked few): not a command's.
_POOLER_SETS = (
    "application_name",
    "client_encoding",
    "datestyle",
    "intervalstyle",
    "standard_conforming_strings",
    "timezone",
)
CLEAN = {
    "search_path": DEFAULT_SEARCH_PATH,
    "settings": [],
    "prepared": 0,
    "cursors": 0,
    "advisory_locks": 0,
    "temporary_objects": 0,
    "state": "idle",
}
_ADVISORY_LOCKS = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
# Temporary tables, indexes, sequences and views, and temporary functions and types:
# whatever lives in a pg_temp_N or pg_toast_temp_N schema, of any session.
_TEMPORARY_OBJECTS = """
    SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relpersistence = 't' OR n.nspname LIKE 'pg\\_%temp\\_%')
         + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname LIKE 'pg\\_%temp\\_%')
         + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname LIKE 'pg\\_%temp\\_%')
"""
# Settings changed in the session (SET, set_config(..., false)) and still in force.
_SESSION_SETTINGS = """
    SELECT name, setting FROM pg_settings
    WHERE source = 'session' AND lower(name) <> ALL(%s)
    ORDER BY name
"""


def _value(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    [(value,)] = conn.execute(query, params).fetchall()  # type: ignore[arg-type]
    return value


class Pin:
    """A client holding a transaction open through PgBouncer, and with it one server
    connection: with every connection of the pool pinned, or freed one at a time, a
    test decides which server connection the next client gets."""

    def __init__(self, through: str) -> None:
        self.conn = psycopg.connect(through, prepare_threshold=None)
        self.pid = self.hold()

    def hold(self) -> int:
        return int(_value(self.conn, "SELECT pg_backend_pid()"))

    def free(self) -> None:
        self.conn.commit()

    def prepared(self) -> list[str]:
        """The statements prepared on the server connection this pin holds."""
        return [row[0] for row in self.conn.execute("SELECT statement FROM pg_prepared_statements")]

    def left_behind(self, state: str) -> dict[str, Any]:
        """What this server connection carries from earlier clients."""
        return {
            "search_path": _value(self.conn, "SHOW search_path"),
            "settings": self.conn.execute(_SESSION_SETTINGS, [list(_POOLER_SETS)]).fetchall(),
            "prepared": len(self.prepared()),
            "cursors": _value(self.conn, "SELECT count(*) FROM pg_cursors"),
            "advisory_locks": _value(self.conn, _ADVISORY_LOCKS),
            "temporary_objects": _value(self.conn, _TEMPORARY_OBJECTS),
            "state": state,
        }


@contextmanager
def pins(through: str, count: int = POOL_SIZE) -> Iterator[list[Pin]]:
    """``count`` clients, each holding one of PgBouncer's server connections."""
    held: list[Pin] = []
    try:
        for _ in range(count):
            held.append(Pin(through))
        assert len({pin.pid for pin in held}) == count  # one server connection each
        yield held
    finally:
        for pin in held:
            pin.conn.close()


def server_connections(bouncer: Bouncer, dsn: str) -> list[dict[str, Any]]:
    """What fresh clients meet on each server connection PgBouncer holds to ``dsn``'s
    database: its search_path and other session settings, prepared statements, open
    cursors, advisory locks and temporary objects, and its state before they came
    (``idle``, not ``idle in transaction``).

    PgBouncer's console lists its server connections (SHOW SERVERS); ``dsn``, the
    database reached directly, says each one's state; then as many clients as the pool
    has connections pin one each through PgBouncer, so every one of them is seen.
    """
    dbname = conninfo_to_dict(dsn)["dbname"]
    console = bouncer.through("dbname=pgbouncer")
    # The console speaks the simple query protocol only: a client-side cursor.
    with psycopg.connect(console, autocommit=True, cursor_factory=psycopg.ClientCursor) as admin:
        cursor = admin.execute("SHOW SERVERS")
        columns = [column.name for column in cursor.description or []]
        servers = {
            server["remote_pid"]: server["state"]
            for server in (dict(zip(columns, row, strict=True)) for row in cursor)
            if server["database"] == dbname
        }
    # A server connection still linked to a client (a transaction left open) would make
    # the pins below wait for it until PgBouncer's query_wait_timeout: say so at once.
    assert "active" not in servers.values(), f"a client still holds a connection: {servers}"
    with psycopg.connect(dsn, autocommit=True) as direct:
        states = dict(
            direct.execute(
                "SELECT pid, state FROM pg_stat_activity WHERE pid = ANY(%s)", [list(servers)]
            ).fetchall()
        )
    assert len(servers) <= POOL_SIZE
    with pins(bouncer.through(dsn)) as held:
        assert set(servers) <= {pin.pid for pin in held}  # none was missed
        return [pin.left_behind(states.get(pin.pid, "idle")) for pin in held]


@contextmanager
def pid_inventing_proxy(server_dsn: str) -> Iterator[str]:
    """A stand-in for a pooler where PgBouncer is missing: a proxy that passes every
    byte through but, as every pooler does, hands the client a backend pid of its own
    making (in BackendKeyData). Yields ``server_dsn`` as reached through the proxy.

    Only this one trait of a pooler: each client still has a server session of its
    own. SSL and GSS encryption are off, so the proxy can read the messages.
    """
    server = conninfo_to_dict(server_dsn)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed
            # Small messages, one round trip at a time: Nagle's delay would add 40 ms each.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = _connect_to(server)
            threading.Thread(target=_copy, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_invent_pids, args=(upstream, client), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        params = {key: value for key, value in server.items() if key not in ("host", "port")}
        params.update(host="127.0.0.1", port=listener.getsockname()[1])
        params.update(sslmode="disable", gssencmode="disable")
        yield make_conninfo(**params)
    finally:
        listener.close()


def _connect_to(server: dict[str, Any]) -> socket.socket:
    """A socket to the server: its Unix socket, or TCP without Nagle's delay."""
    host, port = server.get("host") or "localhost", int(server.get("port") or 5432)
    if host.startswith("/"):
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(f"{host}/.s.PGSQL.{port}")
        return upstream
    upstream = socket.create_connection((host, port))
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return upstream


def _copy(source: socket.socket, target: socket.socket) -> None:
    with source, target:
        while (data := _receive(source, 65536)) and _send(target, data):
            pass


def _invent_pids(server: socket.socket, client: socket.socket) -> None:
    """Copy the server's messages, replacing the pid in BackendKeyData ('K')."""
    with server, client:
        while header := _receive_exactly(server, 5):
            body = _receive_exactly(server, struct.unpack("!I", header[1:])[0] - 4)
            if header[:1] == b"K":
                body = struct.pack("!I", struct.unpack("!I", body[:4])[0] ^ 0x5A5A) + body[4:]
            if not _send(client, header + body):
                return


def _send(target: socket.socket, data: bytes) -> bool:
    try:
        target.sendall(data)
    except OSError:
        return False  # the other side closed both sockets
    return True


def _receive(source: socket.socket, size: int) -> bytes:
    try:
        return source.recv(size)
    except OSError:
        return b""  # the other side closed both sockets


def _receive_exactly(source: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = _receive(source, size - len(data))
        if not chunk:
            return b""
        data += chunk
    return data
