"""sql/schema.sql is what pg_dump prints after every migration; `make schema` regenerates it."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_dal import cli
from customer_dal.resources import sql_directory
from customer_dal.schema_dump import comparable, dump_schema

STORED = sql_directory() / "schema.sql"


@pytest.fixture(scope="module")
def dumped(server_dsn: str) -> str:
    return dump_schema(server_dsn)


def test_schema_sql_is_not_stale(dumped: str) -> None:
    assert comparable(dumped) == comparable(STORED.read_text(encoding="utf-8")), (
        "sql/schema.sql is stale: run make schema and commit the diff"
    )


def test_the_dump_has_every_object_and_nothing_that_changes_from_run_to_run(
    dumped: str,
) -> None:
    for line in (
        "CREATE TABLE public.customers (",
        "CREATE INDEX customers_folded_order_idx ON public.customers USING btree "
        "(name_folded, id) INCLUDE (is_active, search_folded);",
        "CREATE TRIGGER customers_fold BEFORE INSERT OR UPDATE OF name, email, phone, "
        "phone_secondary ON public.customers FOR EACH ROW EXECUTE FUNCTION "
        "public.customers_fold();",
    ):
        assert line in dumped
    for unstable in ("\\restrict", "-- Dumped from", "-- Dumped by", "customer_dal_migrations"):
        assert unstable not in dumped


def test_comparable_makes_the_servers_choice_of_collation_provider_equal() -> None:
    pg18 = "CREATE COLLATION public.customer_dal_fold (provider = builtin, locale = 'C.UTF-8');"
    pg15 = "CREATE COLLATION public.customer_dal_fold (provider = icu, locale = 'und');"
    assert comparable(pg18) == comparable(pg15) != pg18


def test_cli_schema_prints_it_or_writes_it(
    server_dsn: str, dumped: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--dsn", server_dsn, "schema"]) == 0
    assert capsys.readouterr().out == dumped
    target = tmp_path / "schema.sql"
    assert cli.main(["--dsn", server_dsn, "schema", "--output", str(target)]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == dumped


def test_a_password_in_the_dsn_reaches_pg_dump_through_the_environment(server_dsn: str) -> None:
    """The server's own password, or any one for a server that trusts local connections."""
    password = conninfo_to_dict(server_dsn).get("password") or secrets.token_hex(8)
    with_password = make_conninfo(server_dsn, password=password)
    assert comparable(dump_schema(with_password)) == comparable(STORED.read_text(encoding="utf-8"))
