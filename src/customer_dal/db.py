"""Where the database comes from, and how to reach it.

One rule for the library, the CLI, the Makefile and the tests: an explicit DSN,
else ``DATABASE_URL``, else the embedded server (see :mod:`customer_dal.embedded`).
A DSN may be a URL (``postgresql://``, ``postgres://`` or yoyo's
``postgresql+psycopg://``) or a libpq ``key=value`` string.

:func:`connect` (and :func:`async_connect`) opens one connection configured as
the repositories need (autocommit, a connect timeout) and passes any other
psycopg option through; the pools of :mod:`customer_dal.pools` and
:mod:`customer_dal.pools_async` configure theirs the same way.

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

import difflib
import functools
import inspect
import os
import re
import sys
from typing import Any
from urllib.parse import quote, unquote, urlencode

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from .embedded import data_directory, embedded_dsn
from .errors import ConfigurationError, DatabaseUnavailableError

__all__ = [
    "POOL_OPTIONS",
    "async_connect",
    "configured_dsn",
    "configured_replica_dsn",
    "connect",
    "connection_settings",
    "describe",
    "describe_target",
    "error_summary",
    "pooler_mode",
    "resolve_dsn",
    "split_password",
    "with_database",
    "yoyo_url",
]

DATABASE_URL_ENV = "DATABASE_URL"
# A hot standby for the read-only calls of a pool's repositories (see pools_async.py).
REPLICA_URL_ENV = "DATABASE_REPLICA_URL"
POOLER_ENV = "CUSTOMER_DAL_POOLER"
# What sits between the library and PostgreSQL. Only a transaction-mode pooler
# changes anything: a session-mode one keeps a client on one server connection.
POOLER_MODES = ("none", "session", "transaction")
# A server that does not answer should fail in seconds, not hang a deploy.
_DEFAULT_CONNECT_TIMEOUT = 10
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
POOL_OPTIONS = frozenset(
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


def connection_settings(
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
    conninfo, keywords = connection_settings(resolved, pooler, options)
    try:
        return psycopg.connect(conninfo, **keywords)
    except psycopg.OperationalError as exc:
        raise _unreachable(resolved, exc) from exc


def error_summary(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- asyncio: the same connections, for psycopg's AsyncConnection ---


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
    conninfo, keywords = connection_settings(resolved, pooler, options)
    try:
        return await psycopg.AsyncConnection.connect(conninfo, **keywords)
    except psycopg.OperationalError as exc:
        raise _unreachable(resolved, exc) from exc


def _unreachable(dsn: str, exc: psycopg.OperationalError) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(f"cannot connect to {describe(dsn)}: {error_summary(exc)}")
