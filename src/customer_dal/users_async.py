"""AsyncUserRepository: the minimal users table, through ``sql/users.sql``.

customer_dal needs only to create a user (tests, seeding) and to name the user
who registered a customer; calls behave as :class:`AsyncCustomerRepository`'s do.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import class_row

from .calls_async import execute, run_call
from .errors import ConstraintViolationError, DuplicateEmailError
from .flavours import require_connection
from .models import User, UserCreate, check_arguments
from .queries import Query, load_queries

__all__ = ["AsyncUserRepository"]

_user_row = class_row(User)


class AsyncUserRepository:
    """Create and read users."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        require_connection(conn, psycopg.AsyncConnection, self)
        self._conn = conn
        self._queries = load_queries("users.sql")

    async def _fetch_user(self, query: Query, params: dict[str, Any]) -> User | None:
        cursor = await execute(
            psycopg.AsyncRawCursor(self._conn, row_factory=_user_row), query, params
        )
        return await cursor.fetchone()

    async def create(self, full_name: str, email: str | None = None) -> User:
        """Add a user; raises :class:`DuplicateEmailError` for a taken e-mail (any case)."""
        user = UserCreate(full_name=full_name, email=email)
        query = self._queries["create"]
        try:
            created = await run_call(
                self._conn, lambda: self._fetch_user(query, user.__dict__), writes=True
            )
        except ConstraintViolationError as exc:
            if exc.constraint == "users_email_lower_key":
                raise DuplicateEmailError(user.email or "") from exc.__cause__
            raise
        assert created is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        return created

    async def get(self, user_id: int) -> User | None:
        """The user with this id, if any."""
        check_arguments(user_id=user_id)
        query = self._queries["get"]
        return await run_call(self._conn, lambda: self._fetch_user(query, {"id": user_id}))
