"""The library's exceptions: one base class, a few specific ones under it.

Every expected failure (a bad DSN, an unreachable server, a duplicate phone, an
edited migration) surfaces as one of these, with a message a person can act on.
"""

from __future__ import annotations

import psycopg

__all__ = [
    "ConfigurationError",
    "ConstraintViolationError",
    "DataAccessError",
    "DatabaseUnavailableError",
    "DuplicateEmailError",
    "DuplicatePhoneError",
    "MigrationError",
    "MigrationLockedError",
    "UnknownUserError",
]


class DataAccessError(Exception):
    """Base class of every error customer_dal raises on purpose."""


class ConfigurationError(DataAccessError):
    """The connection settings are malformed or the embedded server is missing."""


class DatabaseUnavailableError(DataAccessError):
    """The database server could not be reached."""


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
    """A database rule without a more specific exception refused the write.

    Input validation mirrors the schema, so this means the schema has a rule the
    library does not know of (one a DBA added, say); ``constraint`` names it.
    """

    def __init__(self, constraint: str | None, detail: str) -> None:
        self.constraint = constraint
        super().__init__(f"the database refused the change ({constraint}): {detail}")

    @classmethod
    def from_driver(cls, exc: psycopg.errors.IntegrityError) -> ConstraintViolationError:
        return cls(exc.diag.constraint_name, exc.diag.message_primary or str(exc))


for _cls in (
    DataAccessError,
    ConfigurationError,
    ConstraintViolationError,
    DatabaseUnavailableError,
    DuplicateEmailError,
    MigrationError,
    MigrationLockedError,
    DuplicatePhoneError,
    UnknownUserError,
):
    # Tracebacks show the public import path, as psycopg_pool does.
    _cls.__module__ = "customer_dal"
