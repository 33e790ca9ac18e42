"""Where the database comes from, and the errors when it cannot be reached."""

from __future__ import annotations

import pytest

import customer_dal.db
from customer_dal import ConfigurationError, DatabaseUnavailableError, connect, resolve_dsn
from customer_dal.db import describe, with_database, yoyo_url


def test_an_explicit_dsn_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://env@db/env")
    assert resolve_dsn("postgresql://arg@db/arg") == "postgresql://arg@db/arg"


def test_database_url_is_used_when_no_dsn_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://env@db/env")
    assert resolve_dsn() == "postgresql://env@db/env"


def test_a_malformed_database_url_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://ann@db/shop?colour=blue")
    with pytest.raises(ConfigurationError, match="malformed database URL"):
        resolve_dsn()


def test_an_unreachable_server_is_one_clear_error_without_the_password() -> None:
    dsn = "postgresql://ann:s3cret@127.0.0.1:1/shop"
    with pytest.raises(
        DatabaseUnavailableError, match=r"cannot connect to ann@127\.0\.0\.1:1/shop"
    ) as caught:
        connect(dsn)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("dsn", "url"),
    [
        (
            "postgresql://ann:p%40ss@db.example:6543/shop?sslmode=require",
            "postgresql+psycopg://ann:p%40ss@/shop?host=db.example&port=6543&sslmode=require",
        ),
        (
            "host=/run/pg port=5433 user=postgres dbname=my_db",
            "postgresql+psycopg://postgres@/my_db?host=%2Frun%2Fpg&port=5433",
        ),
        ("postgresql+psycopg:///shop", "postgresql+psycopg:///shop"),
    ],
)
def test_yoyo_gets_the_same_dsn_with_its_scheme(dsn: str, url: str) -> None:
    assert yoyo_url(dsn) == url


def test_with_database_keeps_server_and_credentials() -> None:
    other = with_database("postgresql://ann:pw@db:5433/shop", "archive")
    assert describe(other) == "ann@db:5433/archive"


def test_describe_fills_in_libpq_defaults() -> None:
    assert describe("dbname=shop") == "@localhost:5432/shop"


def test_connect_gives_an_autocommit_connection(dsn: str) -> None:
    with connect(dsn) as connection:
        assert connection.autocommit
        assert connection.execute("SELECT count(*) FROM customers").fetchone() == (0,)


def test_without_dsn_or_database_url_the_embedded_server_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(customer_dal.db, "embedded_dsn", lambda: "postgresql://embedded@/x")
    assert resolve_dsn() == "postgresql://embedded@/x"
