"""UserRepository and AsyncUserRepository."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from customer_dal import ConstraintViolationError, DuplicateEmailError, User, UserRepository

from .flavours import each_flavour  # noqa: F401 - each test runs once per flavour


def test_create_and_get(users: UserRepository) -> None:
    ann = users.create("  Ann Admin ", email="Ann@Shop.com")
    assert isinstance(ann, User)
    assert (ann.full_name, ann.email) == ("Ann Admin", "Ann@shop.com")
    assert users.get(ann.id) == ann
    assert users.get(999_999) is None


def test_emails_are_unique_ignoring_case(users: UserRepository) -> None:
    users.create("Ann", email="ann@shop.com")
    with pytest.raises(DuplicateEmailError, match=r"'ANN@shop\.com' already exists"):
        users.create("Ann Again", email="ANN@SHOP.COM")


@pytest.mark.parametrize(("full_name", "email"), [("  ", None), ("Ann", "nope")])
def test_invalid_users_are_refused_before_sql(
    users: UserRepository, full_name: str, email: str | None
) -> None:
    with pytest.raises(ValidationError):
        users.create(full_name, email=email)


def test_an_unknown_rule_is_a_library_error(
    users: UserRepository, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("ALTER TABLE users ADD CONSTRAINT short_names CHECK (length(full_name) < 5)")
    with pytest.raises(ConstraintViolationError) as caught:
        users.create("Very Long Name")
    assert caught.value.constraint == "short_names"
