"""Accent folding (migrations 0008 expand, 0009 contract): the migration on a table with
customers, writes during and after it, and search that forgives accents and case."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from customer_dal import (
    CustomerRepository,
    MigrationState,
    migrate,
    migration_status,
)
from customer_dal.bench import live_migration, migrations_before
from customer_dal.resources import migrations_directory

from .shipped import SHIPPED, checkout_up_to

EXPAND = "0008_accent_folding"
CONTRACT = "0009_accent_folding_contract"
ORDERED_SEARCH = "0010_ordered_search"


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


def test_search_serves_every_step_of_a_rolling_deploy(before_folding: str, tmp_path: Path) -> None:
    """This package's queries run while its migrations are applied, step by step.

    Search asks the schema which of its statements its indexes are ready for: the
    columns of 0006 before 0008 has built its own (accents then count, as they did),
    0008's before 0010 has built the ordered index, then 0010's, with or without
    the contract step 0009."""
    results = {"before folding": _searches(before_folding)}
    expand = checkout_up_to(tmp_path / "expand", EXPAND)
    migrate(before_folding, directory=expand)
    results["0008 only"] = _searches(before_folding)
    for suffix in (".sql", ".rollback.sql"):
        shutil.copy(migrations_directory() / f"{ORDERED_SEARCH}{suffix}", expand)
    migrate(before_folding, directory=expand)
    assert MigrationState(CONTRACT, "pending") in migration_status(before_folding)
    results["0008 and 0010"] = _searches(before_folding)
    migrate(before_folding)
    release = _searches(before_folding)

    mullers = ["Jürgen Müller 100", "Jürgen Müller 1000", "Jürgen Müller 10000"]
    assert release["MULLER"] == release["müller 100"] == mullers
    assert all(release.values())
    assert results.pop("before folding") == {**release, "MULLER": []}  # accents count
    assert results == {"0008 only": release, "0008 and 0010": release}


def _searches(dsn: str) -> dict[str, list[str]]:
    """What a few searches find: by name, accent, phone, e-mail, prefix, in order."""
    queries = ["MULLER", "müller 100", "ee 1", "an", "5550000004", "000-01", "c12@exä"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        repo = CustomerRepository(conn)
        return {query: [c.name for c in repo.search(query, limit=3)] for query in queries}


# --- search ------------------------------------------------------------------------------


@pytest.fixture
def folk(customers: CustomerRepository) -> None:
    names = [
        "Jürgen Müller",
        "Hans Muller",
        "José Álvarez",
        "Zoë Kravitz",
        "Đặng Văn Minh",
        "Lojas São Paulo",
        "Straße Bistro",
        "Æsir Trading",
        "Ёлкин Пётр",
        "Йошкин Кот",
        "Άννα Παπαδοπούλου",
        "Émile Zola",
        "Emma Stone",
        "Anne-Émilie Roy",
        "Ørsted Łódź",
    ]
    for number, name in enumerate(names):
        customers.create({"name": name, "phone": f"555-300-{number:04d}"})


def _names(found: list[Any]) -> list[str]:
    return [customer.name for customer in found]


@pytest.mark.usefixtures("folk")
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("muller", ["Hans Muller", "Jürgen Müller"]),
        ("MULLER", ["Hans Muller", "Jürgen Müller"]),
        ("Müller", ["Hans Muller", "Jürgen Müller"]),
        ("MÜLLER", ["Hans Muller", "Jürgen Müller"]),
        ("jose", ["José Álvarez"]),
        ("JOSÉ", ["José Álvarez"]),
        ("alvarez", ["José Álvarez"]),
        ("zoe", ["Zoë Kravitz"]),
        ("dang", ["Đặng Văn Minh"]),
        ("đặng", ["Đặng Văn Minh"]),
        ("van minh", ["Đặng Văn Minh"]),
        ("Sao Paulo", ["Lojas São Paulo"]),
        ("são paulo", ["Lojas São Paulo"]),
        ("strasse", ["Straße Bistro"]),
        ("STRASSE", ["Straße Bistro"]),
        ("straße", ["Straße Bistro"]),
        ("aesir", ["Æsir Trading"]),
        ("æsir", ["Æsir Trading"]),
        ("orsted lodz", ["Ørsted Łódź"]),
        ("елкин", ["Ёлкин Пётр"]),
        ("петр", ["Ёлкин Пётр"]),
        ("ЁЛКИН", ["Ёлкин Пётр"]),
        ("αννα", ["Άννα Παπαδοπούλου"]),  # noqa: RUF001 - Greek on purpose
        ("ΠΑΠΑΔΟΠΟΥΛΟΥ", ["Άννα Παπαδοπούλου"]),
    ],
)
def test_accents_and_case_are_forgiven_in_every_alphabet(
    customers: CustomerRepository, query: str, expected: list[str]
) -> None:
    assert _names(customers.search(query)) == expected


@pytest.mark.usefixtures("folk")
def test_a_letter_of_its_own_is_not_an_accent(customers: CustomerRepository) -> None:
    """Cyrillic й is a letter, not и with a mark: unaccent keeps it, and so do we."""
    assert _names(customers.search("йошкин")) == ["Йошкин Кот"]
    assert customers.search("иошкин") == []


@pytest.mark.usefixtures("folk")
def test_a_folded_name_prefix_comes_first_then_the_rest_in_folded_name_order(
    customers: CustomerRepository,
) -> None:
    assert _names(customers.search("emil")) == ["Émile Zola", "Anne-Émilie Roy"]
    assert _names(customers.search("ÉMIL")) == ["Émile Zola", "Anne-Émilie Roy"]


@pytest.mark.usefixtures("folk")
def test_one_or_two_characters_still_match_folded_prefixes_only(
    customers: CustomerRepository,
) -> None:
    assert _names(customers.search("é")) == ["Émile Zola", "Emma Stone"]
    assert _names(customers.search("em")) == ["Émile Zola", "Emma Stone"]
    assert _names(customers.search("ø")) == ["Ørsted Łódź"]


@pytest.mark.usefixtures("folk")
def test_the_list_orders_names_ignoring_accents(customers: CustomerRepository) -> None:
    listed = _names(customers.list(per_page=100).customers)
    assert listed.index("Émile Zola") < listed.index("Emma Stone") < listed.index("Hans Muller")
    assert listed.index("Hans Muller") < listed.index("José Álvarez")
    assert listed.index("José Álvarez") < listed.index("Jürgen Müller")


def test_emails_are_folded_too(customers: CustomerRepository) -> None:
    customers.create({"name": "Ann Lee", "phone": "555-300-9999", "email": "ann@café.example"})
    assert _names(customers.search("cafe.example")) == ["Ann Lee"]


# --- the live migration ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_live_migration_of_100000_customers_blocks_no_writer_or_reader(
    empty_dsn: str, tmp_path: Path
) -> None:
    """4 writers and 4 readers through the library while 0008, 0009 and 0010 are applied:
    no call fails, none waits a second, and every customer ends up folded."""
    before = migrations_before(_fresh(tmp_path / "before"), "0008_accent_folding")
    migrate(empty_dsn, directory=before)
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO customers (name, phone, email)
            SELECT (ARRAY['Jürgen Müller', 'José Núñez', 'Zoë Đặng', 'Ann Lee'])[i % 4 + 1]
                   || ' ' || i, '555-' || lpad(i::text, 7, '0'), 'c' || i || '@example.com'
            FROM generate_series(1, 100000) AS i
            """
        )
        conn.execute("VACUUM ANALYZE customers")
        versions = dict(conn.execute("SELECT id, updated_at FROM customers").fetchall())

    live = live_migration(empty_dsn)

    assert live.applied == [
        "0008_accent_folding",
        "0009_accent_folding_contract",
        "0010_ordered_search",
    ]
    assert live.writes.samples
    assert live.reads.samples
    assert live.writes.worst < 1000, f"a write took {live.writes.worst:.0f} ms"
    assert live.reads.worst < 1000, f"a read took {live.reads.worst:.0f} ms"
    with psycopg.connect(empty_dsn) as conn:
        [(unfolded,)] = conn.execute(
            "SELECT count(*) FROM customers WHERE name_folded <> customer_dal_fold_text(name) "
            "OR search_folded <> customer_dal_search_text(name, email, phone, phone_secondary)"
        ).fetchall()
        renamed = {
            row[0] for row in conn.execute("SELECT id FROM customers WHERE name LIKE 'Renamed %'")
        }
        now = dict(conn.execute("SELECT id, updated_at FROM customers").fetchall())
    assert unfolded == 0
    # The backfill moved no customer's version; only the writers' renames did.
    assert {i for i, version in versions.items() if now[i] != version} <= renamed


def _fresh(directory: Path) -> Path:
    directory.mkdir()
    return directory
