"""A real PgBouncer in transaction mode, in front of the server under test.

The ``pgbouncer`` fixture (one per test module; import ``pgbouncer_fixture``)
starts Debian's ``pgbouncer`` with ``pool_mode = transaction`` and a pool of
:data:`POOL_SIZE` server connections per database, so that many clients share
few server connections, as they do in production. Any database of the test
server is reachable through it under its own name (``Bouncer.through(dsn)``),
so a test's fresh database works too.

PgBouncer refuses to run as root, like PostgreSQL: as root it runs as the
``embedded_postgres`` system user (see :mod:`tests.servers`), in a temporary
directory of that user's, and reaches the server by the host (or Unix socket
directory) and port of the server's DSN.

:func:`pid_inventing_proxy` imitates the one trait of a pooler that the
library detects (a made-up backend pid), for the tests that must cover that
path where PgBouncer is missing.

When the binary is missing the tests skip, saying so, unless
``CUSTOMER_DAL_REQUIRE_PGBOUNCER=1`` (set by ``.ci/run``) turns the skip into a
failure: CI must not pass by skipping them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .servers import _free_port, _Runner

REQUIRE_ENV = "CUSTOMER_DAL_REQUIRE_PGBOUNCER"
# Debian installs it in /usr/sbin, which a non-root PATH may lack.
_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer")
# Small, so that a dozen clients share two server connections.
POOL_SIZE = 2
_START_TIMEOUT = 30.0


def pgbouncer_binary() -> str:
    """The pgbouncer program; skip the test without it (fail when it is required)."""
    for candidate in _CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    reason = "pgbouncer is not installed (apt-get install -y pgbouncer)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
    pytest.skip(reason)


def pgbouncer_version(binary: str) -> tuple[int, ...]:
    output = subprocess.run(
        [binary, "--version"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    found = re.search(r"PgBouncer (\d+)\.(\d+)", output)
    assert found, f"unexpected pgbouncer --version output: {output!r}"
    return tuple(int(part) for part in found.groups())


@dataclass(frozen=True)
class Bouncer:
    """A running PgBouncer: where it listens, and how to reach a database through it."""

    host: str
    port: int
    user: str
    password: str | None
    log: Path

    def through(self, dsn: str) -> str:
        """The DSN of ``dsn``'s database, reached through PgBouncer."""
        dbname = conninfo_to_dict(dsn).get("dbname") or "postgres"
        return make_conninfo(
            host=self.host, port=self.port, user=self.user, dbname=dbname, password=self.password
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _quote(value: str) -> str:
    """A value of PgBouncer's connection string: single-quoted, quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _config(directory: Path, server: dict[str, Any], port: int, version: tuple[int, ...]) -> str:
    target = {
        "host": server.get("host") or "localhost",
        "port": str(server.get("port") or 5432),
        "user": server.get("user") or os.environ.get("PGUSER") or "postgres",
    }
    if server.get("password"):
        target["password"] = server["password"]
    database = " ".join(f"{key}={_quote(value)}" for key, value in target.items())
    lines = [
        "[databases]",
        # Every database name goes to the same-named database of the server.
        f"* = {database}",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        f"unix_socket_dir = {directory}",
        f"logfile = {directory / 'pgbouncer.log'}",
        f"pidfile = {directory / 'pgbouncer.pid'}",
        "auth_type = trust",
        f"admin_users = {target['user']}",  # the console (database pgbouncer) for readiness
        f"auth_file = {directory / 'userlist.txt'}",
        "pool_mode = transaction",
        f"default_pool_size = {POOL_SIZE}",
        "max_client_conn = 500",
        # The server's idle connections are reused most-recent first (LIFO),
        # PgBouncer's default: a lone client keeps meeting the same one.
        "server_round_robin = 0",
    ]
    if version >= (1, 21):
        # Newer PgBouncers can track protocol-level prepared statements; the
        # tests are about a pooler that cannot (1.18, Debian 12's, and any with
        # this set to 0), so they keep the worst case on every version.
        lines.append("max_prepared_statements = 0")
    return "\n".join(lines) + "\n"


@contextmanager
def running_pgbouncer(server_dsn: str) -> Iterator[Bouncer]:
    """Start PgBouncer in front of ``server_dsn``'s server; stop it on exit."""
    binary = pgbouncer_binary()
    runner = _Runner.for_this_process()
    server = conninfo_to_dict(server_dsn)
    user = server.get("user") or os.environ.get("PGUSER") or "postgres"
    directory = Path(tempfile.mkdtemp(prefix="cdal-pgb-"))
    try:
        runner.let_in(directory)
        runner.own(directory)
        port = _free_port()
        (directory / "userlist.txt").write_text(f'"{user}" ""\n')
        config = directory / "pgbouncer.ini"
        config.write_text(_config(directory, server, port, pgbouncer_version(binary)))
        for path in (directory / "userlist.txt", config):
            runner.own(path)
        bouncer = Bouncer(
            "127.0.0.1", port, user, server.get("password"), directory / "pgbouncer.log"
        )
        with _process(runner, binary, config, bouncer):
            yield bouncer
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def _process(runner: _Runner, binary: str, config: Path, bouncer: Bouncer) -> Iterator[None]:
    extra: dict[str, Any] = {}
    if runner.user is not None:
        extra = {"user": runner.user.pw_uid, "group": runner.user.pw_gid, "extra_groups": []}
    process = subprocess.Popen(
        [binary, str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",  # the user may not be allowed into ours
        **extra,
    )
    try:
        _wait_until_ready(process, bouncer)
        yield
    finally:
        process.terminate()  # SIGTERM: PgBouncer closes every connection and exits
        try:
            process.wait(timeout=_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], bouncer: Bouncer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited with {process.returncode}:\n{bouncer.log_text()}")
        try:
            admin = make_conninfo(bouncer.through("dbname=pgbouncer"), connect_timeout=2)
            with psycopg.connect(admin, autocommit=True, prepare_threshold=None):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pgbouncer did not answer in {_START_TIMEOUT:g} s:\n{bouncer.log_text()}"
                ) from None
            time.sleep(0.05)


@pytest.fixture(scope="module", name="pgbouncer")
def pgbouncer_fixture(server_dsn: str) -> Iterator[Bouncer]:
    """PgBouncer in transaction mode in front of the test server, for one test module."""
    with running_pgbouncer(server_dsn) as bouncer:
        yield bouncer


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
