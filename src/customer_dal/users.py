"""UserRepository: the minimal users table, through ``sql/users.sql``.

The auth system will own users; customer_dal needs only to create one (tests,
seeding) and to name the user who registered a customer.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import psycopg
from psycopg.rows import class_row

from .atomic import needs_transaction
from .errors import ConstraintViolationError, DuplicateEmailError
from .models import User, UserCreate
from .queries import load_queries

__all__ = ["UserRepository"]

_user_row = class_row(User)


class UserRepository:
    """Create and read users."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._queries = load_queries("users.sql")

    def create(self, full_name: str, email: str | None = None) -> User:
        """Add a user; raises :class:`DuplicateEmailError` for a taken e-mail (any case)."""
        user = UserCreate(full_name=full_name, email=email)
        try:
            cursor = self._conn.cursor(row_factory=_user_row)
            with self._conn.transaction() if needs_transaction(self._conn) else nullcontext():
                created = cursor.execute(self._queries["create"].sql, user.__dict__).fetchone()
        except psycopg.errors.IntegrityError as exc:
            if exc.diag.constraint_name == "users_email_lower_key":
                raise DuplicateEmailError(user.email or "") from exc
            raise ConstraintViolationError.from_driver(exc) from exc
        assert created is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        return created

    def get(self, user_id: int) -> User | None:
        """The user with this id, if any."""
        with self._conn.cursor(row_factory=_user_row) as cursor:
            return cursor.execute(self._queries["get"].sql, {"id": user_id}).fetchone()
