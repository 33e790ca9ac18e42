"""The database enforces the rules by itself: these tests write raw SQL, as a DBA
in psql would, and expect the schema to refuse what the application would."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, pq

from customer_dal import CustomerRepository

from .conftest import fresh_database

Row = dict[str, Any]


def _insert(conn: psycopg.Connection[Any], **values: Any) -> Row:
    row = {"name": "Ann Lee", "phone": "555-123-4567", **values}
    columns = ", ".join(row)
    placeholders = ", ".join(f"%({key})s" for key in row)
    cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
    inserted = cursor.execute(
        f"INSERT INTO customers ({columns}) VALUES ({placeholders}) RETURNING *",
        row,
    ).fetchone()
    assert inserted is not None
    return inserted


def _violates(conn: psycopg.Connection[Any], constraint: str, **values: Any) -> None:
    with pytest.raises(psycopg.errors.IntegrityError) as caught:
        _insert(conn, **values)
    assert caught.value.diag.constraint_name == constraint


def test_phone_digits_are_generated(conn: psycopg.Connection[Any]) -> None:
    row = _insert(conn, phone="(555) 123-4567", phone_secondary="+1 555.987.6543")
    assert row["phone_digits"] == "5551234567"
    assert row["phone_secondary_digits"] == "15559876543"
    assert row["is_active"] is True


@pytest.mark.parametrize("name", ["", "   ", "\u3000 \u2003"])  # ideographic and em spaces
def test_blank_names_are_rejected(conn: psycopg.Connection[Any], name: str) -> None:
    _violates(conn, "customers_name_not_blank", name=name)


def test_short_phones_are_rejected(conn: psycopg.Connection[Any]) -> None:
    _violates(conn, "customers_phone_min_digits", phone="12-34-56")
    _violates(conn, "customers_phone_secondary_min_digits", phone_secondary="(12) 345")


@pytest.mark.parametrize("email", ["ann", "ann@shop", "ann lee@shop.com", "a@b@shop.com"])
def test_malformed_emails_are_rejected(conn: psycopg.Connection[Any], email: str) -> None:
    _violates(conn, "customers_email_shape", email=email)


def test_a_second_active_customer_cannot_take_the_same_number_in_another_format(
    conn: psycopg.Connection[Any],
) -> None:
    _insert(conn, phone="(555) 123-4567")
    _violates(conn, "customers_active_phone_key", name="Bob", phone="555.123.4567")


def test_a_soft_deleted_customers_number_may_be_reused(conn: psycopg.Connection[Any]) -> None:
    first = _insert(conn, phone="5551234567")
    conn.execute("UPDATE customers SET is_active = false WHERE id = %s", [first["id"]])
    second = _insert(conn, name="Bob", phone="555 123 4567")
    with pytest.raises(errors.UniqueViolation):
        conn.execute("UPDATE customers SET is_active = true WHERE id = %s", [first["id"]])
    assert second["phone_digits"] == first["phone_digits"]


def test_secondary_phones_may_be_shared(conn: psycopg.Connection[Any]) -> None:
    _insert(conn, phone="555-000-0001", phone_secondary="555-777-8888")
    _insert(conn, name="Bob", phone="555-000-0002", phone_secondary="555 777 8888")


def test_updated_at_moves_on_an_update_typed_by_hand(conn: psycopg.Connection[Any]) -> None:
    row = _insert(conn, updated_at="2000-01-01T00:00:00Z")
    conn.execute("UPDATE customers SET notes = 'VIP' WHERE id = %s", [row["id"]])
    moved = conn.execute(
        "SELECT updated_at > created_at - interval '1 minute', updated_at > %s "
        "FROM customers WHERE id = %s",
        [row["updated_at"], row["id"]],
    ).fetchone()
    assert moved == (True, True)


def test_deleting_a_user_keeps_their_customers(conn: psycopg.Connection[Any]) -> None:
    user = conn.execute("INSERT INTO users (full_name) VALUES ('Clerk') RETURNING id").fetchone()
    assert user is not None
    row = _insert(conn, created_by_id=user[0])
    conn.execute("DELETE FROM users WHERE id = %s", [user[0]])
    left = conn.execute("SELECT created_by_id FROM customers WHERE id = %s", [row["id"]])
    assert left.fetchone() == (None,)


def test_created_by_must_name_a_user(conn: psycopg.Connection[Any]) -> None:
    _violates(conn, "customers_created_by_id_fkey", created_by_id=999)


def test_users_are_unique_by_email_ignoring_case(conn: psycopg.Connection[Any]) -> None:
    conn.execute("INSERT INTO users (full_name, email) VALUES ('Ann', 'Ann@Shop.com')")
    with pytest.raises(errors.UniqueViolation) as caught:
        conn.execute("INSERT INTO users (full_name, email) VALUES ('Ann 2', 'ann@shop.com')")
    assert caught.value.diag.constraint_name == "users_email_lower_key"
    with pytest.raises(errors.CheckViolation):
        conn.execute("INSERT INTO users (full_name) VALUES ('  ')")
    with pytest.raises(errors.CheckViolation) as caught:
        conn.execute("INSERT INTO users (full_name) VALUES (repeat('x', 201))")
    assert caught.value.diag.constraint_name == "users_full_name_length"


def test_every_table_and_column_is_documented(conn: psycopg.Connection[Any]) -> None:
    undocumented = conn.execute(
        """
        SELECT c.relname || coalesce('.' || a.attname, '')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind = 'r'
          AND (obj_description(c.oid, 'pg_class') IS NULL
               OR (a.attnum IS NOT NULL AND col_description(c.oid, a.attnum) IS NULL))
        """
    ).fetchall()
    assert undocumented == []


# --- The indexes serve the queries they were made for --------------------------------


@pytest.fixture(scope="module")
def many_customers(server_dsn: str, template_dbname: str) -> Iterator[psycopg.Connection[Any]]:
    """100,000 customers: enough for the planner to prefer each index over a scan.

    Built once for the module (it takes seconds) and only read by the tests.
    """
    for dsn in fresh_database(server_dsn, template_dbname):
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(
                """
                INSERT INTO customers (name, phone, phone_secondary, email, address, is_active)
                SELECT 'Customer ' || md5(i::text),
                       '555-' || lpad(i::text, 7, '0'),
                       CASE WHEN i % 3 = 0 THEN '444 ' || lpad(i::text, 7, '0') END,
                       'c' || md5(i::text) || '@example.com',
                       repeat('Main Street ', 10),
                       i % 10 <> 0
                FROM generate_series(1, 100000) AS i
                """
            )
            connection.execute("ANALYZE customers")
            yield connection


def _plan_indexes(conn: psycopg.Connection[Any], query: str, params: list[Any]) -> set[str]:
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Index Name" in node:
            found.add(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "param", "index"),
    [
        ("phone_digits = %s", "5550001234", "customers_phone_digits_idx"),
        (
            "phone_secondary_digits = %s",
            "4440001233",
            "customers_phone_secondary_digits_idx",
        ),
        ("search_folded LIKE %s", "%3f2a9%", "customers_search_folded_trgm_idx"),
        ("search_folded LIKE %s", "%c1234@%", "customers_search_folded_trgm_idx"),
        ("search_folded LIKE %s", "%0012345%", "customers_search_folded_trgm_idx"),
        ("created_by_id = %s", 1, "customers_created_by_id_idx"),
    ],
)
def test_the_planner_uses_the_index_made_for_each_lookup(
    many_customers: psycopg.Connection[Any], where: str, param: Any, index: str
) -> None:
    assert index in _plan_indexes(
        many_customers, f"SELECT id FROM customers WHERE {where}", [param]
    )


@pytest.mark.slow
def test_listing_by_name_walks_the_name_index(many_customers: psycopg.Connection[Any]) -> None:
    query = "SELECT id FROM customers ORDER BY name_folded, id LIMIT 20"
    assert "customers_folded_order_idx" in _plan_indexes(many_customers, query, [])
    prefix = "SELECT id FROM customers WHERE name_folded LIKE %s ORDER BY name_folded, id LIMIT 20"
    assert "customers_folded_order_idx" in _plan_indexes(many_customers, prefix, ["customer 3f%"])


def _executed_indexes(conn: psycopg.Connection[Any], query: str) -> set[str]:
    """The indexes a search for ``query`` read, from the plan it ran (its generic plan,
    under its own settings), as auto_explain reports it."""
    [read] = _reads_of_each_statement(conn, query)
    return read


def _reads_of_each_statement(conn: psycopg.Connection[Any], query: str) -> list[set[str]]:
    """For each search statement a search for ``query`` ran, in order, the indexes and
    tables it read (the nodes auto_explain shows executed)."""
    plans: list[dict[str, Any]] = []

    def keep_search_plan(notice: psycopg.errors.Diagnostic) -> None:
        message = notice.message_primary or ""
        if "WITH folded AS" in message:  # a search statement, not its settings
            plans.append(json.loads(message[message.index("{") :]))

    conn.execute("LOAD 'auto_explain'")
    settings = {"log_min_duration": "0", "log_analyze": "on", "log_format": "json"}
    for name, value in {**settings, "log_level": "notice"}.items():
        conn.execute("SELECT set_config(%s, %s, false)", [f"auto_explain.{name}", value])
    conn.add_notice_handler(keep_search_plan)
    try:
        CustomerRepository(conn).search(query)
    finally:
        conn.remove_notice_handler(keep_search_plan)
        conn.execute("SELECT set_config('auto_explain.log_min_duration', '-1', false)")

    def reads(node: dict[str, Any], read: set[str]) -> set[str]:
        if node["Actual Loops"] > 0 and ("Index Name" in node or "Relation Name" in node):
            read.add(node.get("Index Name", node.get("Relation Name")))
        for child in node.get("Plans", []):
            reads(child, read)
        return read

    return [reads(plan["Plan"], set()) for plan in plans]


def test_a_search_is_one_round_trip(conn: psycopg.Connection[Any]) -> None:
    """On an idle autocommit connection, its settings and its statement go out with
    one Sync, and nothing more is sent once the server starts answering."""
    customers = CustomerRepository(conn)
    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        customers.search("ann")
        conn.pgconn.untrace()
        trace.seek(0)
        # One line per protocol message: F (sent) or B (received), length, type, ...
        lines = trace.read().splitlines()
    messages = [line.split("\t")[:3] for line in lines if line[:2] in ("F\t", "B\t")]
    sides = [side for side, _, _ in messages]
    sent = [kind for side, _, kind in messages if side == "F"]
    assert sides == sorted(sides, reverse=True)  # every F before the first B
    assert sent.count("Sync") == 1
    assert sent.count("Execute") == 2


def test_search_reads_nothing_while_its_ordered_index_is_being_built(
    conn: psycopg.Connection[Any],
) -> None:
    """Without its index (CREATE INDEX CONCURRENTLY still running, or failed) search
    would read and sort the table: it runs nothing, and search_folded answers."""
    conn.execute("INSERT INTO customers (name, phone) VALUES ('Ann Lee', '555-123-4567')")
    conn.execute("DROP INDEX customers_search_ordered_idx")
    search, search_folded = _reads_of_each_statement(conn, "nn le")
    assert search == set()
    assert "customers_search_folded_trgm_idx" in search_folded


@pytest.mark.slow
@pytest.mark.parametrize("query", ["ustomer 3f", "c1234", "zz-no-match", "555 12"])
def test_the_last_search_tier_reads_matches_in_order_from_the_ordered_index(
    many_customers: psycopg.Connection[Any], query: str
) -> None:
    """Common or rare, its matches come from the GiST scan in name order."""
    assert "customers_search_ordered_idx" in _executed_indexes(many_customers, query)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "index"),
    [
        # Every e-mail is at example.com: the first names walked are the answer.
        ("example.com", "customers_folded_order_idx"),
        # No trigram: e-mail prefixes, collected from their own index.
        ("x", "customers_email_folded_idx"),
        ("c1", "customers_email_folded_idx"),
        ("...", "customers_email_folded_idx"),
        # A phone fragment: collected from the trigram index, then sorted.
        ("555-0001", "customers_search_folded_trgm_idx"),
    ],
)
def test_other_queries_are_answered_without_the_ordered_index(
    many_customers: psycopg.Connection[Any], query: str, index: str
) -> None:
    read = _executed_indexes(many_customers, query)
    assert index in read
    assert "customers_search_ordered_idx" not in read


def test_search_finds_btree_gist_in_any_schema(conn: psycopg.Connection[Any]) -> None:
    """A DBA may move btree_gist to a schema of their own, off every search path."""
    conn.execute("INSERT INTO customers (name, phone) VALUES ('Ann Lee', '555-123-4567')")
    conn.execute("CREATE SCHEMA dba_tools")
    conn.execute("ALTER EXTENSION btree_gist SET SCHEMA dba_tools")
    assert [c.name for c in CustomerRepository(conn).search("nn le")] == ["Ann Lee"]
    [(search_path,)] = conn.execute("SHOW search_path").fetchall()
    assert "dba_tools" not in search_path  # the search's own setting ended with it


def test_every_index_constraint_trigger_function_and_schema_is_documented(
    conn: psycopg.Connection[Any],
) -> None:
    """What \\di+, \\dd and \\d+ show a DBA: a comment on everything the migrations create.

    (PostgreSQL 18 also lists NOT NULL as constraints: the columns' comments cover them.)
    """
    undocumented = conn.execute(
        """
        SELECT 'index ' || c.relname FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE obj_description(c.oid, 'pg_class') IS NULL
        UNION ALL
        SELECT 'constraint ' || conname FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND contype <> 'n'
          AND obj_description(oid, 'pg_constraint') IS NULL
        UNION ALL
        SELECT 'trigger ' || tgname FROM pg_trigger
        WHERE NOT tgisinternal AND obj_description(oid, 'pg_trigger') IS NULL
        UNION ALL
        SELECT 'function ' || proname FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace AND obj_description(oid, 'pg_proc') IS NULL
        UNION ALL
        SELECT 'schema ' || nspname FROM pg_namespace
        WHERE nspname IN ('customer_dal_migrations', 'extensions')
          AND obj_description(oid, 'pg_namespace') IS NULL
        UNION ALL
        SELECT 'collation ' || collname FROM pg_collation
        WHERE collnamespace = 'public'::regnamespace
          AND obj_description(oid, 'pg_collation') IS NULL
        """
    ).fetchall()
    assert undocumented == []


def test_public_holds_only_the_projects_functions(conn: psycopg.Connection[Any]) -> None:
    functions = conn.execute(
        "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1"
    ).fetchall()
    assert [name for (name,) in functions] == [
        "customer_dal_fold_text",
        "customer_dal_name_key",
        "customer_dal_search_text",
        "customers_fold",
        "customers_touch_updated_at",
        "text_is_clean_block",
        "text_is_clean_line",
    ]
    [(schema,)] = conn.execute(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    ).fetchall()
    assert schema == "extensions"


def test_users_email_has_the_shape_check_customers_email_has(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        conn.execute("INSERT INTO users (full_name, email) VALUES ('Ann', 'ann at shop')")
    assert caught.value.diag.constraint_name == "users_email_shape"
