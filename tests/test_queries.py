"""Every shipped query is valid against the migrated schema, and the models agree
with the tables they read: a typo or a schema drift fails here first."""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

import psycopg
import pytest
from pydantic import BaseModel

from customer_dal import Customer, User
from customer_dal.queries import load_queries
from customer_dal.resources import sql_directory

# Files of named queries; sql/roles.sql is a psql script for DBAs, not one of them.
QUERY_FILES = sorted(
    path.name for path in sql_directory().glob("*.sql") if "\n-- name: " in path.read_text()
)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def test_there_are_query_files() -> None:
    assert QUERY_FILES == ["bench.sql", "bulk_import.sql", "customers.sql", "users.sql"]


@pytest.mark.parametrize("filename", QUERY_FILES)
def test_every_named_query_is_loaded_once_with_its_doc(filename: str) -> None:
    text = (sql_directory() / filename).read_text()
    queries = load_queries(filename)
    assert len(queries) == text.count("\n-- name: ")
    for query in queries.values():
        assert query.doc, f"{filename}:{query.name} has no doc comment"
        assert not query.sql.startswith("--")
    assert load_queries(filename) is queries  # read from disk once


@pytest.mark.parametrize(
    ("filename", "name"),
    [(filename, name) for filename in QUERY_FILES for name in load_queries(filename)],
)
def test_every_query_plans_against_the_schema(
    conn: psycopg.Connection[Any], filename: str, name: str
) -> None:
    queries = load_queries(filename)
    query = queries[name]
    params = dict.fromkeys(_PLACEHOLDER.findall(query.sql))
    with conn.transaction(force_rollback=True):
        # Tables a file's queries work on (staging, baselines) exist only in the
        # transaction that creates them: create them all first.
        for setup in queries.values():
            if setup.sql.startswith("CREATE"):
                conn.execute(setup.sql)
        if name == "search":  # planned under its own settings (the search path)
            conn.execute(queries["search_settings"].sql)
        if query.sql.startswith("COPY"):
            with conn.cursor() as cursor, cursor.copy(query.sql) as copy:
                if "TO STDOUT" in query.sql:
                    assert b"name,phone" in b"".join(bytes(chunk) for chunk in copy)
        elif query.sql.startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
            conn.execute(f"EXPLAIN {query.sql}", params)  # plans, never runs
        elif not query.sql.startswith(("CREATE", "VACUUM")):  # VACUUM refuses transactions
            conn.execute(query.sql)  # DROP, SET: harmless, rolled back


def _nullable(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _columns(conn: psycopg.Connection[Any], table: str) -> dict[str, bool]:
    rows = conn.execute(
        "SELECT attname, NOT attnotnull FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [table],
    ).fetchall()
    return dict(rows)


@pytest.mark.parametrize(
    ("model", "table", "not_columns", "not_fields"),
    [
        (
            Customer,
            "customers",
            {"created_by_name"},
            {
                "phone_digits",
                "phone_secondary_digits",
                "name_key",
                "search_text",
                "name_folded",
                "search_folded",
            },
        ),
        (User, "users", set(), set()),
    ],
)
def test_models_match_their_tables_field_by_field(
    conn: psycopg.Connection[Any],
    model: type[BaseModel],
    table: str,
    not_columns: set[str],
    not_fields: set[str],
) -> None:
    columns = _columns(conn, table)
    fields = {
        name: _nullable(info.annotation)
        for name, info in model.model_fields.items()
        if name not in not_columns
    }
    assert fields == {
        name: nullable for name, nullable in columns.items() if name not in not_fields
    }
