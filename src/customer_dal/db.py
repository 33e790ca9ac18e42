"""Where the database comes from, and how to reach it.

One rule for the library, the CLI, the Makefile and the tests: an explicit DSN,
else ``DATABASE_URL``, else the embedded server (see :mod:`customer_dal.embedded`).
A DSN may be a URL (``postgresql://``, ``postgres://`` or yoyo's
``postgresql+psycopg://``) or a libpq ``key=value`` string.

:func:`connect` opens one connection and :func:`pool` a ``psycopg_pool``
pool; both configure their connections as the repositories need (autocommit,
a connect timeout) and pass any other psycopg option through.
:func:`async_connect` and :func:`async_pool` do the same for asyncio.

**Behind a transaction-mode pooler** (PgBouncer's ``pool_mode = transaction``)
consecutive transactions of one client may run on different server
connections, and one server connection serves many clients in turn. psycopg
prepares a statement after its fifth run, under names (``_pg3_0``, ...) that
are unique per client only: through such a pooler they collide, and a client
can execute *another client's* statement. ``CUSTOMER_DAL_POOLER=transaction``
(or ``pooler="transaction"``) turns preparing off (``prepare_threshold=None``)
on every connection the library opens, and makes migrations refuse to run (see
:mod:`customer_dal.migrations`). ``none`` and ``session`` (a session-mode
pooler keeps a client on one server connection) change nothing.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar, cast
from urllib.parse import quote, unquote, urlencode

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout, TooManyRequests

from .embedded import data_directory, embedded_dsn
from .errors import ConfigurationError, DatabaseUnavailableError
from .replicas import ReadReplica

__all__ = [
    "AsyncPool",
    "Pool",
    "async_connect",
    "async_pool",
    "configured_dsn",
    "configured_replica_dsn",
    "connect",
    "describe",
    "describe_target",
    "error_summary",
    "pool",
    "pooler_mode",
    "resolve_dsn",
    "split_password",
    "with_database",
    "yoyo_url",
]

DATABASE_URL_ENV = "DATABASE_URL"
# A hot standby for the read-only calls of a pool's repositories (see replicas.py).
REPLICA_URL_ENV = "DATABASE_REPLICA_URL"
POOLER_ENV = "CUSTOMER_DAL_POOLER"
# What sits between the library and PostgreSQL. Only a transaction-mode pooler
# changes anything: a session-mode one keeps a client on one server connection.
POOLER_MODES = ("none", "session", "transaction")
# A server that does not answer should fail in seconds, not hang a deploy.
_DEFAULT_CONNECT_TIMEOUT = 10
# How long a read waits for a standby connection before it reads from the
# primary, and how long reads then leave the standby alone (see replicas.py).
_DEFAULT_REPLICA_WAIT = 2.0
_DEFAULT_REPLICA_RETRY = 5.0
T = TypeVar("T")
_SCHEME_ALIASES = ("postgresql+psycopg://", "postgres+psycopg://")
# DATABSE_URL and DATABASE_URI score about 0.95; TEST_DATABASE_URL, a
# legitimately different variable, scores 0.83.
_LOOKALIKE_CUTOFF = 0.85
# Where a password sits in a DSN that libpq could not parse: the URL's
# user:password@, a ?password= query argument, or a key=value pair.
_PASSWORD_PATTERNS = (
    re.compile(r"^[^:/?#\s]+://[^:@/?#]*:([^@/?#]*)@"),
    re.compile(r"[?&]password=([^&#]*)"),
    re.compile(r"\bpassword\s*=\s*('(?:\\.|[^'\\])*'?|\S+)"),
)
_QUOTED = re.compile(r'"[^"]*"')
# psycopg.connect()'s own keywords; every other option is a libpq connection
# parameter (application_name, options, connect_timeout, sslmode, ...).
_DRIVER_OPTIONS = frozenset(
    name
    for name, parameter in inspect.signature(psycopg.Connection.connect).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)
# ConnectionPool's own keywords (min_size, max_size, timeout, name, ...). The
# connection string, the connections' keywords and opening are ours to set.
_POOL_OPTIONS = frozenset(
    name
    for name in inspect.signature(ConnectionPool.__init__).parameters
    if name not in {"self", "conninfo", "kwargs", "open"}
)


def resolve_dsn(dsn: str | None = None) -> str:
    """Return a libpq DSN: ``dsn``, else ``$DATABASE_URL``, else the embedded server."""
    return configured_dsn(dsn) or embedded_dsn()


def configured_dsn(dsn: str | None = None) -> str | None:
    """``dsn``, else ``$DATABASE_URL``, normalised; None means the embedded server.

    A DATABASE_URL that is set but empty (an unset CI secret, ``DATABASE_URL=
    make migrate``) is an error, never a quiet switch to the embedded server.
    """
    if dsn:
        return _normalise(dsn)
    configured = _from_environment(DATABASE_URL_ENV, "unset it to use the embedded server")
    if configured is None:
        _warn_about_lookalikes()
    return configured


def configured_replica_dsn(replica_dsn: str | None = None) -> str | None:
    """``replica_dsn``, else ``$DATABASE_REPLICA_URL``, normalised; None means no replica:
    every read goes to the primary. Set but empty is an error, as for DATABASE_URL."""
    if replica_dsn:
        return _normalise(replica_dsn)
    return _from_environment(REPLICA_URL_ENV, "unset it to read from the primary")


def _from_environment(name: str, when_empty: str) -> str | None:
    from_env = os.environ.get(name)
    if from_env is None:
        return None
    if not from_env.strip():
        raise ConfigurationError(f"{name} is set but empty; {when_empty}")
    return _normalise(from_env)


def describe_target(dsn: str | None) -> str:
    """The ``database:`` line's target, without starting anything: ``user@host:port/dbname``
    for a configured DSN (``None`` being the embedded server, named by its data directory)."""
    return describe(dsn) if dsn is not None else f"embedded {data_directory()}"


def _warn_about_lookalikes() -> None:
    """Name a variable that looks like a misspelt DATABASE_URL: the embedded server is
    about to be used, which is probably not what its author meant."""
    others = [name for name in os.environ if name != DATABASE_URL_ENV]
    by_upper = {name.upper(): name for name in others}
    for match in difflib.get_close_matches(
        DATABASE_URL_ENV, list(by_upper), n=3, cutoff=_LOOKALIKE_CUTOFF
    ):
        _warn_once(by_upper[match])


@functools.cache
def _warn_once(name: str) -> None:
    print(
        f"customer-dal: warning: {DATABASE_URL_ENV} is unset but {name} is set; "
        f"did you mean {DATABASE_URL_ENV}? Using the embedded server",
        file=sys.stderr,
    )


def _normalise(dsn: str) -> str:
    """Accept yoyo's scheme too, and reject what libpq cannot parse, early and clearly."""
    for alias in _SCHEME_ALIASES:
        if dsn.startswith(alias):
            dsn = "postgresql://" + dsn[len(alias) :]
    _parse(dsn)
    return dsn


def _parse(dsn: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = _redact_password(error_summary(exc), dsn)
        raise ConfigurationError(f"malformed database URL: {reason}") from None


def _redact_password(text: str, dsn: str) -> str:
    """``text`` with the DSN's password starred out: libpq's parse errors quote the DSN.

    A quoted fragment holding the password goes whole (it is usually the whole
    DSN); any other occurrence is starred where it stands. The driver's
    exception is not chained either, so no traceback (--debug) shows it.
    """
    secrets: set[str] = set()
    for pattern in _PASSWORD_PATTERNS:
        for found in pattern.findall(dsn):
            secrets.update({found, unquote(found), found.strip("'")})
    secrets.discard("")
    if not secrets:
        return text
    text = _QUOTED.sub(
        lambda quoted: '"***"' if any(s in quoted[0] for s in secrets) else quoted[0], text
    )
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def split_password(dsn: str) -> tuple[str, str | None]:
    """The DSN without its password, and the password: for a child process's argument
    list, which every user of the machine can read in ``ps``."""
    params = _parse(_normalise(dsn))
    password = params.pop("password", None)
    return make_conninfo(**params), password


def with_database(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(_normalise(dsn), dbname=dbname)


def describe(dsn: str) -> str:
    """``user@host:port/dbname`` for messages: never the password.

    What the DSN leaves out is filled in as libpq will (PGUSER, PGHOST, PGPORT,
    PGDATABASE, the login name), so the name is where the connection goes.
    """
    given = {key: value for key, value in _parse(dsn).items() if value}
    params = {**_libpq_defaults(), **given}
    user = params.get("user", "")
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{user}@{host}:{params.get('port', '5432')}/{params.get('dbname') or user}"


def _libpq_defaults() -> dict[str, str]:
    """libpq's defaults as they stand: the PG* environment, else its built-in values."""
    return {
        option.keyword.decode(): option.val.decode()
        for option in pq.Conninfo.get_defaults()
        if option.val is not None
    }


def yoyo_url(dsn: str) -> str:
    """The same DSN in the URL form yoyo needs, with the psycopg 3 scheme.

    yoyo picks its driver from the scheme (``postgresql+psycopg``) which psycopg
    itself rejects; this is the one place that converts. Host and port travel as
    query arguments so Unix-socket directories survive the round trip.
    """
    params = _parse(_normalise(dsn))
    credentials = ""
    if "user" in params:
        credentials = quote(params.pop("user"), safe="")
        if "password" in params:
            credentials += ":" + quote(params.pop("password"), safe="")
        credentials += "@"
    dbname = quote(params.pop("dbname", ""), safe="")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql+psycopg://{credentials}/{dbname}{query}"


def pooler_mode(pooler: str | None = None) -> str:
    """The pooler in front of the server: ``pooler``, else ``$CUSTOMER_DAL_POOLER``, else none.

    A value outside :data:`POOLER_MODES` is an error, an empty one included: a
    deploy that meant ``transaction`` must not quietly run without it.
    """
    given = pooler if pooler is not None else os.environ.get(POOLER_ENV, "none")
    mode = given.strip().lower()
    if mode not in POOLER_MODES:
        source = "pooler" if pooler is not None else POOLER_ENV
        raise ConfigurationError(
            f"{source} must be one of {', '.join(POOLER_MODES)}, not {given!r}"
        )
    return mode


def _connection_settings(
    dsn: str, pooler: str | None, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The connection string and psycopg keywords for a connection to ``dsn``.

    ``options`` are psycopg's keywords (``prepare_threshold``, ``autocommit``, ...)
    or libpq parameters (``application_name``, ``options``, ...), which win over
    the DSN's. Connections are autocommit and time out connecting after
    :data:`_DEFAULT_CONNECT_TIMEOUT` seconds unless told otherwise; behind a
    transaction-mode pooler they never prepare statements.
    """
    keywords = {name: value for name, value in options.items() if name in _DRIVER_OPTIONS}
    parameters = {name: value for name, value in options.items() if name not in _DRIVER_OPTIONS}
    keywords.setdefault("autocommit", True)
    if pooler_mode(pooler) == "transaction":
        _never_prepare(keywords)
    return _conninfo(dsn, parameters), keywords


def _never_prepare(keywords: dict[str, Any]) -> None:
    """Turn psycopg's prepared statements off; refuse a caller who asked for them."""
    threshold = keywords.setdefault("prepare_threshold", None)
    if threshold is not None:
        raise ConfigurationError(
            f"prepare_threshold={threshold!r} is unsafe behind a transaction-mode pooler: "
            "its server connections are shared, and so would be the prepared statements; "
            "leave prepare_threshold unset"
        )


def _conninfo(dsn: str, parameters: dict[str, Any]) -> str:
    params = {**_parse(dsn), **parameters}
    params.setdefault("connect_timeout", _DEFAULT_CONNECT_TIMEOUT)
    try:
        return make_conninfo(**params)
    except psycopg.ProgrammingError as exc:  # an unknown option: it names the option only
        raise ConfigurationError(error_summary(exc)) from exc


def connect(
    dsn: str | None = None, *, pooler: str | None = None, **options: Any
) -> psycopg.Connection[Any]:
    """Open an autocommit connection; each repository call is then its own transaction.

    Wrap calls in ``with conn.transaction():`` to make several of them atomic.
    ``options`` go to psycopg (``prepare_threshold``, ``application_name``,
    ``options``, ...); ``pooler`` overrides ``$CUSTOMER_DAL_POOLER`` (see the
    module docstring).
    """
    resolved = resolve_dsn(dsn)
    conninfo, keywords = _connection_settings(resolved, pooler, options)
    try:
        return psycopg.connect(conninfo, **keywords)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to {describe(resolved)}: {error_summary(exc)}"
        ) from exc


def pool(
    dsn: str | None = None,
    *,
    pooler: str | None = None,
    replica_dsn: str | None = None,
    replica_wait: float = _DEFAULT_REPLICA_WAIT,
    replica_retry: float = _DEFAULT_REPLICA_RETRY,
    **options: Any,
) -> Pool:
    """Open a connection pool whose connections are configured as :func:`connect`'s.

    ``options`` that ``psycopg_pool.ConnectionPool`` takes (``min_size``,
    ``max_size``, ``timeout``, ``name``, ``max_idle``, ``check``, ...) configure
    the pool; the rest go to its connections, as for :func:`connect`. Returns
    once ``min_size`` connections are open; a server that gives none within the
    pool's ``timeout`` raises :class:`DatabaseUnavailableError` with the reason,
    and so does every later ``getconn()`` or ``connection()`` that waits for a
    connection longer than ``timeout`` (see :class:`Pool`). Use it as a context
    manager, or call ``close()``, to stop its threads and connections.

    ``replica_dsn`` (else ``$DATABASE_REPLICA_URL``) names a hot standby: the
    pool then holds a second pool, of the same options, for the read-only
    calls of the pooled repositories (:mod:`customer_dal.routing`). It opens
    without waiting: a standby that is down must not keep the application
    down, since reads fall back to the primary (see :mod:`customer_dal.replicas`
    for ``replica_wait`` and ``replica_retry``).
    """
    resolved = resolve_dsn(dsn)
    replica = configured_replica_dsn(replica_dsn)
    pool_options = {name: value for name, value in options.items() if name in _POOL_OPTIONS}
    others = {name: value for name, value in options.items() if name not in _POOL_OPTIONS}
    primary = _new_pool(resolved, pooler, pool_options, others)
    new_standby_pool = None
    if replica is not None:
        standby_options = {**pool_options, "name": f"{primary.name}-replica"}
        new_standby_pool = functools.partial(_new_pool, replica, pooler, standby_options, others)
        new_standby_pool()  # a bad option fails here, before any pool has threads
    primary.open(wait=True, timeout=primary.timeout)
    if new_standby_pool is not None:
        primary.replica = ReadReplica(
            new_standby_pool, wait=replica_wait, retry_after=replica_retry
        )
    return primary


def _new_pool(
    dsn: str, pooler: str | None, pool_options: dict[str, Any], others: dict[str, Any]
) -> Pool:
    conninfo, keywords = _connection_settings(dsn, pooler, others)
    unopened = Pool(conninfo, kwargs=keywords, open=False, **pool_options)
    unopened.target = describe(dsn)
    return unopened


class Pool(ConnectionPool[psycopg.Connection[Any]]):
    """psycopg's pool, whose failures to hand out a connection are the library's.

    ``psycopg_pool.PoolTimeout`` (no connection within the timeout) and
    ``TooManyRequests`` (``max_waiting`` clients already queued) become
    :class:`DatabaseUnavailableError`: with the server's reason when the pool's
    latest attempt to connect failed, else saying that every connection was in use.
    """

    target = "the database"  # user@host:port/dbname, set by pool()
    # The hot standby for reads, when pool() was given one.
    replica: ReadReplica | None = None
    # How the pool's latest attempt to connect (made in its own threads) ended:
    # None when it worked, or none was made yet.
    _connect_error: psycopg.Error | None = None

    def _connect(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        # psycopg_pool's one place that opens connections. Were it renamed, the
        # messages would lose the server's reason, and nothing else.
        try:
            connection = super()._connect(timeout)
        except psycopg.Error as exc:
            self._connect_error = exc
            raise
        self._connect_error = None
        return connection

    def run(self, call: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``call`` on one of this pool's connections (the primary's)."""
        with self.connection() as conn:
            return call(conn)

    def run_read(self, call: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``call``, which only reads, on the replica when there is one and it answers."""
        if self.replica is None:
            return self.run(call)
        return self.replica.run(call, fallback=self.run)

    def close(self, timeout: float = 5.0) -> None:
        if self.replica is not None:
            self.replica.close()
        super().close(timeout)

    def wait(self, timeout: float = 30.0) -> None:
        try:
            super().wait(timeout)
        except PoolTimeout as exc:
            self._unavailable(exc, timeout)

    def getconn(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        try:
            return super().getconn(timeout)
        except PoolTimeout as exc:
            self._unavailable(exc, self.timeout if timeout is None else timeout)
        except TooManyRequests as exc:
            raise DatabaseUnavailableError(
                f"no connection to {self.target}: pool {self.name!r} already has "
                f"{self.max_waiting} clients waiting (max_waiting)"
            ) from exc

    def _unavailable(self, exc: PoolTimeout, waited: float) -> NoReturn:
        """Raise the library's error for a wait of ``waited`` seconds that timed out."""
        failed = self._connect_error
        if failed is not None:
            raise DatabaseUnavailableError(
                f"cannot connect to {self.target}: {error_summary(failed)} "
                f"(pool {self.name!r} waited {waited:g} s)"
            ) from failed  # the server's reason; the pool's timeout is the __context__
        # Also a server slower to answer than the wait (connect_timeout is longer).
        raise DatabaseUnavailableError(
            f"no connection to {self.target} within {waited:g} s: all {self.max_size} "
            f"connections of pool {self.name!r} are in use (return them sooner or raise "
            "max_size), or the server is slow to accept more"
        ) from exc


def error_summary(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- asyncio: the same connections, for psycopg's AsyncConnection and AsyncConnectionPool ---


async def async_connect(
    dsn: str | None = None, *, pooler: str | None = None, **options: Any
) -> psycopg.AsyncConnection[Any]:
    """Open an autocommit ``psycopg.AsyncConnection`` configured as :func:`connect`'s.

    For :class:`~customer_dal.AsyncCustomerRepository` and
    :class:`~customer_dal.AsyncUserRepository`; ``async with conn.transaction():``
    makes several calls atomic. Without a DSN or ``DATABASE_URL``, the first call
    starts the embedded server, blocking the event loop while it starts.
    """
    resolved = resolve_dsn(dsn)
    conninfo, keywords = _connection_settings(resolved, pooler, options)
    try:
        return await psycopg.AsyncConnection.connect(conninfo, **keywords)
    except psycopg.OperationalError as exc:
        raise _unreachable(resolved, exc) from exc


def _unreachable(dsn: str, exc: psycopg.OperationalError) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(f"cannot connect to {describe(dsn)}: {error_summary(exc)}")


async def async_pool(
    dsn: str | None = None, *, pooler: str | None = None, **options: Any
) -> AsyncPool:
    """Open a ``psycopg_pool.AsyncConnectionPool`` configured as :func:`pool`'s.

    The same options, the same connections (autocommit, a connect timeout, no
    prepared statements behind a transaction-mode pooler) and the same
    :class:`DatabaseUnavailableError` when no connection comes within the
    pool's ``timeout`` (see :class:`AsyncPool`). Returns once ``min_size``
    connections are open: ``async with await async_pool() as pool:``.
    """
    target, conninfo, keywords, pool_options = _pool_settings(dsn, pooler, options)
    opened = AsyncPool(conninfo, kwargs=keywords, open=False, **pool_options)
    opened.target = target
    await opened.open(wait=True, timeout=opened.timeout)
    return opened


def _pool_settings(
    dsn: str | None, pooler: str | None, options: dict[str, Any]
) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """For a pool on ``dsn``: its target for messages, its connections' string and
    keywords, and its own options (those ``psycopg_pool``'s pools take)."""
    resolved = resolve_dsn(dsn)
    pool_options = {name: value for name, value in options.items() if name in _POOL_OPTIONS}
    others = {name: value for name, value in options.items() if name not in _POOL_OPTIONS}
    conninfo, keywords = _connection_settings(resolved, pooler, others)
    return describe(resolved), conninfo, keywords, pool_options


class AsyncPool(AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """psycopg's async pool, whose failures to hand out a connection are :class:`Pool`'s.

    ``PoolTimeout`` and ``TooManyRequests`` become :class:`DatabaseUnavailableError`
    with the messages :class:`Pool` gives.
    """

    target = "the database"  # user@host:port/dbname, set by async_pool()
    # How the pool's latest attempt to connect ended (None: it worked, or none was made).
    _connect_error: psycopg.Error | None = None

    async def _connect(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:
        # As Pool._connect: keep the server's reason for the messages.
        with _connect_outcome(self):
            return await super()._connect(timeout)

    async def wait(self, timeout: float = 30.0) -> None:
        try:
            await super().wait(timeout)
        except PoolTimeout as exc:
            self._unavailable(exc, timeout)

    async def getconn(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:
        try:
            return await super().getconn(timeout)
        except PoolTimeout as exc:
            self._unavailable(exc, self.timeout if timeout is None else timeout)
        except TooManyRequests as exc:
            waiting = f"pool {self.name!r} already has {self.max_waiting} clients waiting"
            raise DatabaseUnavailableError(
                f"no connection to {self.target}: {waiting} (max_waiting)"
            ) from exc

    def _unavailable(self, exc: PoolTimeout, waited: float) -> NoReturn:
        # Pool's messages, word for word: its method reads only what both pools have
        # (target, name, max_size, _connect_error).
        Pool._unavailable(cast(Pool, self), exc, waited)


@contextlib.contextmanager
def _connect_outcome(opened: AsyncPool) -> Iterator[None]:
    """Record on the pool how the attempt to connect in the block ended."""
    try:
        yield
    except psycopg.Error as exc:
        opened._connect_error = exc
        raise
    opened._connect_error = None
