"""Where the database comes from, and the errors when it cannot be reached."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import customer_dal.db
from customer_dal import ConfigurationError, DatabaseUnavailableError, connect, resolve_dsn
from customer_dal.db import (
    configured_dsn,
    describe,
    describe_target,
    split_password,
    with_database,
    yoyo_url,
)
from customer_dal.embedded import data_directory


@pytest.fixture(autouse=True)
def _warn_afresh() -> Iterator[None]:
    """Each test sees the look-alike warning as a new process would."""
    customer_dal.db._warn_once.cache_clear()
    yield
    customer_dal.db._warn_once.cache_clear()


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


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_database_url_is_an_error_not_the_embedded_server(
    monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    """An unset CI secret or ``DATABASE_URL= make migrate`` must not migrate a scratch server."""
    monkeypatch.setenv("DATABASE_URL", empty)
    with pytest.raises(ConfigurationError) as caught:
        resolve_dsn()
    assert str(caught.value) == (
        "DATABASE_URL is set but empty; unset it to use the embedded server"
    )


@pytest.mark.parametrize("lookalike", ["DATABSE_URL", "DATABASE_URI", "database_url"])
def test_a_misspelt_database_url_is_named_when_falling_back_to_embedded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], lookalike: str
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv(lookalike, "postgresql://meant@db/this")
    assert configured_dsn() is None  # the embedded server, as the rule says
    assert configured_dsn() is None
    assert capsys.readouterr().err == (
        f"customer-dal: warning: DATABASE_URL is unset but {lookalike} is set; "
        "did you mean DATABASE_URL? Using the embedded server\n"
    )


def test_a_different_variable_is_not_taken_for_a_misspelling(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("TEST_DATABASE_URL", "postgresql://other@db/tests")
    assert configured_dsn() is None
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://ann:s3cret@[db/shop",  # libpq quotes the whole URL
        "postgresql://ann:s3%zzcret@db/shop",  # ... or the bad token, the password
        "http://ann:s3cret@db/shop",
        "postgresql://ann@db/shop?password=s3cret&colour=blue",
        "host=db password=s3cret junk",
        "host=db password='s3cret",
        "postgresql://ann:s3cret@db/sh%zzop",
    ],
)
def test_a_malformed_dsn_never_repeats_its_password(
    monkeypatch: pytest.MonkeyPatch, dsn: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", dsn)
    with pytest.raises(ConfigurationError, match=r"^malformed database URL: ") as caught:
        resolve_dsn()
    assert "s3cret" not in str(caught.value)
    assert caught.value.__cause__ is None  # nor does a --debug traceback
    assert caught.value.__suppress_context__


def test_a_redacted_message_keeps_what_does_not_hold_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_dsn("postgresql://ann:s3cret@db/shop?colour=blue")
    assert str(caught.value) == 'malformed database URL: invalid URI query parameter: "colour"'


def test_the_password_is_split_from_the_dsn() -> None:
    assert split_password("postgresql://ann:s3cret@db:5433/shop") == (
        "user=ann dbname=shop host=db port=5433",
        "s3cret",
    )
    assert split_password("host=db dbname=shop") == ("dbname=shop host=db", None)


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


def test_describe_fills_in_what_libpq_will_use(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PGUSER", "clerk")
    assert describe("dbname=shop") == "clerk@localhost:5432/shop"
    monkeypatch.setenv("PGHOST", "db.internal")
    monkeypatch.setenv("PGPORT", "6543")
    monkeypatch.setenv("PGDATABASE", "archive")
    assert describe("user=ann") == "ann@db.internal:6543/archive"
    monkeypatch.delenv("PGDATABASE")
    assert describe("user=ann") == "ann@db.internal:6543/ann"  # dbname defaults to the user


def test_the_target_is_named_without_starting_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMER_DAL_PGDATA", "/nowhere/pgdata")
    assert describe_target(None) == "embedded /nowhere/pgdata"
    assert describe_target("postgresql://ann:pw@db/shop") == "ann@db:5432/shop"
    assert data_directory().as_posix() == "/nowhere/pgdata"


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
