"""customer_dal: a small, raw-SQL data-access layer for a shop's customers on PostgreSQL.

Everything public is importable from here::

    import customer_dal

    customer_dal.migrate()                  # DSN: argument, else $DATABASE_URL, else embedded
    conn = customer_dal.connect()           # autocommit; each call is atomic by itself
    customers = customer_dal.CustomerRepository(conn)
    ann = customers.create({"name": "Ann Lee", "phone": "(555) 123-4567"})
    customers.search("555 123")             # -> [Customer(name='Ann Lee', ...)]

    with customer_dal.pool(max_size=10) as pool:    # a psycopg_pool.ConnectionPool
        with pool.connection() as conn:
            customer_dal.CustomerRepository(conn).get(ann.id)
        shop = customer_dal.PooledCustomerRepository(pool)  # shared; reads go to
        shop.get(ann.id)                                    # $DATABASE_REPLICA_URL if set

    # asyncio: the same methods, awaited, on psycopg's AsyncConnection
    async with await customer_dal.async_pool(max_size=10) as pool:
        async with pool.connection() as aconn:
            await customer_dal.AsyncCustomerRepository(aconn).get(ann.id)

Behind PgBouncer in transaction mode set ``CUSTOMER_DAL_POOLER=transaction``
(see :mod:`customer_dal.db`). The library logs to the ``customer_dal`` logger
(migrations applied and rolled back, at INFO) and is silent unless the
application configures logging.
"""

import logging

from .customers import CustomerRepository
from .customers_async import AsyncCustomerRepository
from .db import async_connect, connect, resolve_dsn
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
from .pools import pool
from .pools_async import async_pool
from .routing import PooledCustomerRepository, PooledUserRepository
from .routing_async import AsyncPooledCustomerRepository, AsyncPooledUserRepository
from .users import UserRepository
from .users_async import AsyncUserRepository

__all__ = [
    "AsyncCustomerRepository",
    "AsyncPooledCustomerRepository",
    "AsyncPooledUserRepository",
    "AsyncUserRepository",
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
    "PooledCustomerRepository",
    "PooledUserRepository",
    "QueryTimeoutError",
    "ReadOnlyDatabaseError",
    "SchemaNotReadyError",
    "StaleUpdateError",
    "TransactionConflictError",
    "UnknownUserError",
    "User",
    "UserCreate",
    "UserRepository",
    "async_connect",
    "async_pool",
    "connect",
    "migrate",
    "migration_status",
    "pool",
    "resolve_dsn",
    "rollback",
]

# A library's loggers stay silent unless the application configures logging:
# without a handler, Python's last resort would print our warnings on stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())
