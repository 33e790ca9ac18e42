"""Where the database comes from, and how to reach it.

One rule for the library, the CLI, the Makefile and the tests: an explicit DSN,
else ``DATABASE_URL``, else the embedded server (see :mod:`customer_dal.embedded`).
A DSN may be a URL (``postgresql://``, ``postgres://`` or yoyo's
``postgresql+psycopg://``) or a libpq ``key=value`` string.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .embedded import embedded_dsn
from .errors import ConfigurationError, DatabaseUnavailableError

__all__ = ["connect", "describe", "error_summary", "resolve_dsn", "with_database", "yoyo_url"]

DATABASE_URL_ENV = "DATABASE_URL"
# A server that does not answer should fail in seconds, not hang a deploy.
_DEFAULT_CONNECT_TIMEOUT = 10
_SCHEME_ALIASES = ("postgresql+psycopg://", "postgres+psycopg://")


def resolve_dsn(dsn: str | None = None) -> str:
    """Return a libpq DSN: ``dsn``, else ``$DATABASE_URL``, else the embedded server."""
    if dsn:
        return _normalise(dsn)
    from_env = os.environ.get(DATABASE_URL_ENV)
    if from_env:
        return _normalise(from_env)
    return embedded_dsn()


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
        raise ConfigurationError(f"malformed database URL: {error_summary(exc)}") from exc


def with_database(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(_normalise(dsn), dbname=dbname)


def describe(dsn: str) -> str:
    """``user@host:port/dbname`` for messages: never the password."""
    params = _parse(dsn)
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{params.get('user', '')}@{host}:{port}/{params.get('dbname', '')}"


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


def connect(dsn: str | None = None) -> psycopg.Connection[Any]:
    """Open an autocommit connection; each repository call is then its own transaction.

    Wrap calls in ``with conn.transaction():`` to make several of them atomic.
    """
    resolved = resolve_dsn(dsn)
    params = _parse(resolved)
    params.setdefault("connect_timeout", _DEFAULT_CONNECT_TIMEOUT)
    try:
        return psycopg.connect(make_conninfo(**params), autocommit=True)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to {describe(resolved)}: {error_summary(exc)}"
        ) from exc


def error_summary(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
