"""The library's exceptions, and the one place that turns driver errors into them.

Every failure that leaves customer_dal is either pydantic's ``ValidationError``
(bad input, raised before any SQL runs) or a :class:`DataAccessError` subclass
whose ``__cause__`` is the driver's exception. Driver errors are recognised by
SQLSTATE (class and code) and constraint name, never by message text, so a
server speaking another language maps the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg

# translate() serves both flavours of connection.
AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]

__all__ = [
    "ConfigurationError",
    "ConstraintViolationError",
    "DataAccessError",
    "DatabaseUnavailableError",
    "DuplicateEmailError",
    "DuplicatePhoneError",
    "MigrationError",
    "MigrationLockedError",
    "PermissionDeniedError",
    "QueryTimeoutError",
    "ReadOnlyDatabaseError",
    "SchemaNotReadyError",
    "StaleUpdateError",
    "TransactionConflictError",
    "UnknownUserError",
    "translate",
]


class DataAccessError(Exception):
    """Base class of every error customer_dal raises on purpose."""


class ConfigurationError(DataAccessError):
    """The connection settings are malformed or the embedded server is missing."""


class DatabaseUnavailableError(DataAccessError):
    """The server refused the connection, or it was lost mid-call (shutdown, restart, network).

    The broken connection is closed: open a new one (or let a pool do it).
    """


class QueryTimeoutError(DataAccessError):
    """The server cancelled the statement: ``statement_timeout`` or ``lock_timeout`` ran out.

    ``setting`` names which. Nothing the statement did was kept; retrying later may work.
    """

    def __init__(self, message: str, setting: str) -> None:
        self.setting = setting
        super().__init__(message)


class ReadOnlyDatabaseError(DataAccessError):
    """A write reached a hot standby or a read-only transaction: send it to the primary."""


class PermissionDeniedError(DataAccessError):
    """The database role lacks a privilege the call needs (see the message for the object)."""


class SchemaNotReadyError(DataAccessError):
    """The database lacks the tables or columns this package's queries use: run migrations."""


class TransactionConflictError(DataAccessError):
    """A serialization failure or deadlock: the transaction was rolled back; retry it whole."""


class StaleUpdateError(DataAccessError):
    """The customer changed since it was read (``expected_updated_at``); nothing was written.

    Read it again (``current_updated_at`` is its version now), reapply the
    change and retry.
    """

    def __init__(self, customer_id: int, current_updated_at: datetime) -> None:
        self.customer_id = customer_id
        self.current_updated_at = current_updated_at
        super().__init__(
            f"customer {customer_id} was changed by someone else since it was read "
            f"(now at version {current_updated_at.isoformat()}); nothing was written: "
            "read it again and retry"
        )


class MigrationError(DataAccessError):
    """A migration could not be applied or rolled back; nothing was half-done."""


class MigrationLockedError(MigrationError):
    """Another process holds the migration lock for longer than we are willing to wait."""


class DuplicatePhoneError(DataAccessError):
    """An active customer already holds this primary phone number (compared by digits)."""

    def __init__(self, phone: str, existing_id: int | None) -> None:
        self.phone = phone
        self.existing_id = existing_id
        holder = f"customer {existing_id}" if existing_id is not None else "another customer"
        super().__init__(f"phone {phone!r} already belongs to active {holder}")


class UnknownUserError(DataAccessError):
    """A ``created_by_id`` names no user."""

    def __init__(self, user_id: int | None) -> None:
        self.user_id = user_id
        super().__init__(f"created_by_id {user_id} names no user")


class DuplicateEmailError(DataAccessError):
    """A user with this e-mail address (ignoring case) already exists."""

    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(f"a user with e-mail {email!r} already exists")


class ConstraintViolationError(DataAccessError):
    """A database rule refused the write; ``constraint`` names it.

    The repositories turn the rules they know (a taken phone, an unknown user)
    into the more specific exceptions above, so meeting this one means the
    schema has a rule the library does not know of (one a DBA added, say).
    """

    def __init__(self, constraint: str | None, detail: str) -> None:
        self.constraint = constraint
        super().__init__(f"the database refused the change ({constraint}): {detail}")

    @classmethod
    def from_driver(cls, exc: psycopg.errors.IntegrityError) -> ConstraintViolationError:
        return cls(exc.diag.constraint_name, exc.diag.message_primary or str(exc))


# SQLSTATEs whose meaning is "this connection is gone", beyond class 08.
_CONNECTION_GONE = {
    "57P01",  # admin_shutdown: pg_terminate_backend, a fast shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: starting up or shutting down
    "57P05",  # idle_session_timeout
    "25P03",  # idle_in_transaction_session_timeout
    "25P04",  # transaction_timeout (PostgreSQL 17+)
    "53300",  # too_many_connections
}


def _timeout(setting: str) -> Callable[[str, str], DataAccessError]:
    return lambda where, reason: QueryTimeoutError(
        f"{where}: the statement ran past {setting} and was cancelled; "
        f"nothing it did was kept ({reason})",
        setting,
    )


def _not_migrated(where: str, reason: str) -> DataAccessError:
    return SchemaNotReadyError(f"{where} is not migrated: run make migrate ({reason})")


# SQLSTATE (a code, or a two-character class) -> the library's exception,
# given where (user@host:port/db) and the server's one-line reason.
_BY_SQLSTATE: dict[str, Callable[[str, str], DataAccessError]] = {
    "57014": _timeout("statement_timeout"),
    "55P03": _timeout("lock_timeout"),
    "25006": lambda where, reason: ReadOnlyDatabaseError(
        f"{where} is read-only (a hot standby or a read-only transaction): "
        "send writes to the primary"
    ),
    "42501": lambda where, reason: PermissionDeniedError(f"{where}: {reason}"),
    "28": lambda where, reason: PermissionDeniedError(f"{where}: {reason}"),
    # A table, column, function, type or schema the queries use is missing:
    # the database was never migrated, or is behind this package.
    "42P01": _not_migrated,
    "42703": _not_migrated,
    "42883": _not_migrated,
    "42704": _not_migrated,
    "3F000": _not_migrated,
    "40": lambda where, reason: TransactionConflictError(
        f"{where}: {reason}; the transaction was rolled back, retry it"
    ),
    "25P02": lambda where, reason: DataAccessError(
        f"{where}: the current transaction failed earlier and ignores every statement "
        "until it is rolled back"
    ),
}


def translate(
    exc: psycopg.Error,
    conn: AnyConnection | None,
    *,
    writes: bool = False,
    in_transaction: bool = False,
) -> DataAccessError:
    """The library's exception for a driver error met while running a call on ``conn``.

    ``writes`` says whether the call could have changed data, ``in_transaction``
    whether it ran inside the caller's transaction: a connection lost during a
    write outside a transaction leaves its outcome unknown. A broken connection
    is closed, so the caller's next step (or the pool) starts clean; an
    ``AsyncConnection``'s close must be awaited, which its caller does.
    """
    if isinstance(exc, psycopg.errors.IntegrityError):
        return ConstraintViolationError.from_driver(exc)
    state = exc.sqlstate or ""
    where = _where(conn)
    if _connection_gone(exc, conn):
        return _unavailable(exc, conn, where, writes=writes, in_transaction=in_transaction)
    build = _BY_SQLSTATE.get(state) or _BY_SQLSTATE.get(state[:2])
    if build is None:
        return DataAccessError(f"{where}: {_first_line(exc)}")
    return build(where, _first_line(exc))


def _connection_gone(exc: psycopg.Error, conn: AnyConnection | None) -> bool:
    state = exc.sqlstate or ""
    if state[:2] == "08" or state in _CONNECTION_GONE:
        return True
    if conn is None:  # connecting: libpq's own failures (refused, timed out) carry no SQLSTATE
        return isinstance(exc, psycopg.OperationalError) and not state
    return conn.closed


def _unavailable(
    exc: psycopg.Error,
    conn: AnyConnection | None,
    where: str,
    *,
    writes: bool,
    in_transaction: bool,
) -> DatabaseUnavailableError:
    if isinstance(conn, psycopg.Connection):
        conn.close()
    if in_transaction:
        outcome = "the transaction was lost and nothing in it was committed"
    elif writes:
        outcome = "the outcome of the write is unknown: check before retrying"
    else:
        outcome = "nothing was changed"
    return DatabaseUnavailableError(
        f"lost the connection to {where}: {outcome} ({_first_line(exc)})"
    )


def _where(conn: AnyConnection | None) -> str:
    """``user@host:port/dbname`` of the connection, never its password."""
    if conn is None or (conn.closed and not conn.broken):
        return "the database"  # a closed connection no longer knows where it was
    info = conn.info
    return f"{info.user}@{info.host}:{info.port}/{info.dbname}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Tracebacks show the public import path, as psycopg_pool does.
for _name in __all__:
    _exported = globals()[_name]
    if isinstance(_exported, type):
        _exported.__module__ = "customer_dal"
