"""customer_dal: a small, raw-SQL data-access layer for a shop's customers on PostgreSQL.

Everything public is importable from here::

    import customer_dal

    customer_dal.migrate()                  # DSN: argument, else $DATABASE_URL, else embedded
    conn = customer_dal.connect()           # autocommit; each call is atomic by itself
    customers = customer_dal.CustomerRepository(conn)
    ann = customers.create({"name": "Ann Lee", "phone": "(555) 123-4567"})
    customers.search("555 123")             # -> [Customer(name='Ann Lee', ...)]
"""

from .customers import CustomerRepository
from .db import connect, resolve_dsn
from .errors import (
    ConfigurationError,
    ConstraintViolationError,
    DataAccessError,
    DatabaseUnavailableError,
    DuplicateEmailError,
    DuplicatePhoneError,
    MigrationError,
    MigrationLockedError,
    PermissionDeniedError,
    QueryTimeoutError,
    ReadOnlyDatabaseError,
    SchemaNotReadyError,
    StaleUpdateError,
    TransactionConflictError,
    UnknownUserError,
)
from .migrations import MigrationState, migrate, migration_status, rollback
from .models import (
    Customer,
    CustomerCreate,
    CustomerList,
    CustomerSearch,
    CustomerUpdate,
    User,
    UserCreate,
)
from .users import UserRepository

__all__ = [
    "ConfigurationError",
    "ConstraintViolationError",
    "Customer",
    "CustomerCreate",
    "CustomerList",
    "CustomerRepository",
    "CustomerSearch",
    "CustomerUpdate",
    "DataAccessError",
    "DatabaseUnavailableError",
    "DuplicateEmailError",
    "DuplicatePhoneError",
    "MigrationError",
    "MigrationLockedError",
    "MigrationState",
    "PermissionDeniedError",
    "QueryTimeoutError",
    "ReadOnlyDatabaseError",
    "SchemaNotReadyError",
    "StaleUpdateError",
    "TransactionConflictError",
    "UnknownUserError",
    "User",
    "UserCreate",
    "UserRepository",
    "connect",
    "migrate",
    "migration_status",
    "resolve_dsn",
    "rollback",
]
