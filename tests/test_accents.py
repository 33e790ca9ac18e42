"""Accent folding (migrations 0008 expand, 0009 contract): the migration on a table with
customers, writes during and after it, and search that forgives accents and case."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from customer_dal import (
    CustomerRepository,
    MigrationState,
    SchemaNotReadyError,
    migrate,
    migration_status,
)

from .shipped import SHIPPED, checkout_up_to

EXPAND = "0008_accent_folding"
CONTRACT = "0009_accent_folding_contract"


@pytest.fixture
def before_folding(empty_dsn: str, tmp_path: Path) -> str:
    """A database at the migration before accent folding, with customers in it."""
    previous = SHIPPED[SHIPPED.index(EXPAND) - 1]
    migrate(empty_dsn, directory=checkout_up_to(tmp_path / "old", previous))
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO customers (name, phone, email)
            SELECT (ARRAY['Jürgen Müller', 'José Núñez', 'Zoë Đặng', 'Ann Lee'])[i % 4 + 1]
                   || ' ' || i, '555-' || lpad(i::text, 7, '0'), 'c' || i || '@Exämple.com'
            FROM generate_series(1, 12000) AS i
            """
        )
    return empty_dsn


def test_the_expand_step_backfills_every_row_without_moving_its_version(
    before_folding: str, tmp_path: Path
) -> None:
    with psycopg.connect(before_folding) as conn:
        versions = conn.execute("SELECT id, updated_at FROM customers ORDER BY id").fetchall()
    migrate(before_folding, directory=checkout_up_to(tmp_path / "expand", EXPAND))
    with psycopg.connect(before_folding) as conn:
        assert conn.execute("SELECT id, updated_at FROM customers ORDER BY id").fetchall() == (
            versions
        )
        [(unfolded,)] = conn.execute(
            "SELECT count(*) FROM customers WHERE name_folded IS DISTINCT FROM "
            "customer_dal_fold_text(name) OR search_folded IS DISTINCT FROM "
            "customer_dal_search_text(name, email, phone, phone_secondary)"
        ).fetchall()
        assert unfolded == 0
        [(example,)] = conn.execute("SELECT search_folded FROM customers WHERE id = 2").fetchall()
        assert example == "zoe dang 2\x1fc2@example.com\x1f5550000002\x1f"


def test_writes_keep_the_folded_columns_and_the_version_moves_as_before(
    before_folding: str, tmp_path: Path
) -> None:
    migrate(before_folding, directory=checkout_up_to(tmp_path / "expand", EXPAND))
    with psycopg.connect(before_folding, autocommit=True) as conn:
        repo = CustomerRepository(conn)
        created = repo.create({"name": "Ærø Ståle", "phone": "555-999-0000"})
        updated = repo.update(created.id, {"name": "Øre Straße"})
        assert updated is not None
        assert updated.updated_at > created.updated_at
        touched = repo.update(created.id, {"notes": "only a note"})
        assert touched is not None
        assert touched.updated_at > updated.updated_at
        [(name_folded, search_folded)] = conn.execute(
            "SELECT name_folded, search_folded FROM customers WHERE id = %s", [created.id]
        ).fetchall()
    assert name_folded == "ore strasse"
    assert search_folded.startswith("ore strasse\x1f")


def test_a_database_with_the_expand_step_only_serves_every_call(
    before_folding: str, tmp_path: Path
) -> None:
    """A rolling deploy: this package's queries run before 0009 is applied, and after."""
    with (
        psycopg.connect(before_folding, autocommit=True) as conn,
        pytest.raises(SchemaNotReadyError),
    ):
        CustomerRepository(conn).search("muller")
    migrate(before_folding, directory=checkout_up_to(tmp_path / "expand", EXPAND))
    assert migration_status(before_folding)[-1] == MigrationState(CONTRACT, "pending")
    for step in ("expand only", "contracted"):
        with psycopg.connect(before_folding, autocommit=True) as conn:
            repo = CustomerRepository(conn)
            found = repo.search("MULLER", limit=3)
            expected = ["Jürgen Müller 100", "Jürgen Müller 1000", "Jürgen Müller 10000"]
            assert [c.name for c in found] == expected, step
            assert repo.list(per_page=1).customers[0].name.startswith("Ann Lee"), step
            assert repo.get_by_phone("555 000 0004") is not None, step
        migrate(before_folding)
