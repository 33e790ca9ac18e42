"""customer_dal: a small, raw-SQL data-access layer for a shop's customers on PostgreSQL.

Everything public is importable from here::

    import customer_dal

    customer_dal.migrate()                 # DSN: argument, else $DATABASE_URL, else embedded
    conn = customer_dal.connect()
"""

from .db import connect, resolve_dsn
from .errors import (
    ConfigurationError,
    DataAccessError,
    DatabaseUnavailableError,
    DuplicatePhoneError,
    MigrationError,
    MigrationLockedError,
    UnknownUserError,
)
from .migrations import MigrationState, migrate, migration_status, rollback

__all__ = [
    "ConfigurationError",
    "DataAccessError",
    "DatabaseUnavailableError",
    "DuplicatePhoneError",
    "MigrationError",
    "MigrationLockedError",
    "MigrationState",
    "UnknownUserError",
    "connect",
    "migrate",
    "migration_status",
    "resolve_dsn",
    "rollback",
]
