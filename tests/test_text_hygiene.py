"""Text hygiene: no control characters, one normal form (NFC), through the API and
by hand in SQL; search finds what a keyboard types, whatever the server's locale."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from pydantic import ValidationError

from customer_dal import CustomerRepository, MigrationError, UserRepository, migrate
from customer_dal.db import with_database
from customer_dal.models import MAX_ADDRESS_LENGTH, MAX_NOTES_LENGTH

from .shipped import checkout_up_to

_names = itertools.count()

ANN = {"name": "Ann Lee", "phone": "555-123-4567"}

# Every character of Unicode category Cc but the ones a multi-line field may hold.
CONTROLS = [chr(c) for c in [*range(0x01, 0x20), *range(0x7F, 0xA0)]]
BLOCK_CONTROLS = [c for c in CONTROLS if c not in "\n\t"]
ONE_LINE_FIELDS = ["name", "phone", "phone_secondary", "email"]


def _value(field: str, inside: str) -> str:
    return {
        "name": f"Ann{inside}Lee",
        "phone": f"555{inside}123-4567",
        "phone_secondary": f"555{inside}123-4568",
        "email": f"ann{inside}@example.com",
        "address": f"1 Main{inside}St",
        "notes": f"VIP{inside}customer",
    }[field]


@pytest.mark.parametrize("field", [*ONE_LINE_FIELDS, "address", "notes"])
@pytest.mark.parametrize("char", ["\x1b", "\x1f", "\x7f", "\x85", "\x00", "\x0b"])
def test_the_api_refuses_control_characters_naming_the_field(
    customers: CustomerRepository, field: str, char: str
) -> None:
    with pytest.raises(ValidationError, match=rf"{field}\n.*control character U\+{ord(char):04X}"):
        customers.create({**ANN, field: _value(field, char)})
    assert customers.count_active() == 0


@pytest.mark.parametrize("field", ONE_LINE_FIELDS)
@pytest.mark.parametrize("char", ["\r", "\n", "\t"])
def test_one_line_fields_refuse_line_breaks_and_tabs(
    customers: CustomerRepository, field: str, char: str
) -> None:
    with pytest.raises(ValidationError, match=rf"{field}\n.*control character U\+{ord(char):04X}"):
        customers.create({**ANN, field: _value(field, char)})


def test_multi_line_fields_keep_newlines_and_tabs_and_crlf_becomes_lf(
    customers: CustomerRepository,
) -> None:
    ann = customers.create({**ANN, "address": "1 Main St\r\nSpringfield", "notes": "a\tb\rc"})
    assert (ann.address, ann.notes) == ("1 Main St\nSpringfield", "a\tb\nc")


@pytest.mark.parametrize("field", ["name", "phone"])
def test_one_line_fields_refuse_newlines_and_tabs(
    customers: CustomerRepository, field: str
) -> None:
    for char in "\n\t":
        with pytest.raises(ValidationError, match=field):
            customers.update(1, {field: _value(field, char)})


def test_users_refuse_control_characters(users: UserRepository) -> None:
    with pytest.raises(ValidationError, match="full_name"):
        users.create("Clerk\x1b[2JKent")


def test_text_is_stored_in_normal_form_c(
    customers: CustomerRepository, users: UserRepository
) -> None:
    decomposed = "Ju\u0308rgen Mu\u0308ller"
    ann = customers.create({**ANN, "name": decomposed, "notes": "cafe\u0301"})
    assert (ann.name, ann.notes) == ("Jürgen Müller", "café")
    updated = customers.update(ann.id, {"address": "Stra\u00dfe 1, Ko\u0308ln"})
    assert updated is not None
    assert updated.address == "Straße 1, Köln"
    assert users.create("Zoe\u0308").full_name == "Zoë"


def test_an_nfd_name_is_found_by_the_nfc_query_a_keyboard_types(
    customers: CustomerRepository,
) -> None:
    ann = customers.create({**ANN, "name": "Mu\u0308ller"})
    assert [c.id for c in customers.search("Müller")] == [ann.id]
    assert [c.id for c in customers.search("Mu\u0308ller")] == [ann.id]


def test_search_refuses_control_characters(customers: CustomerRepository) -> None:
    with pytest.raises(ValidationError, match="query"):
        customers.search("ann\x1f")


# ---- the database refuses the same, for rows written by hand ----------------

HAND_WRITTEN = [
    ("customers", "name", "Ann\x1bLee", "customers_name_clean"),
    ("customers", "phone", "555\x1f123-4567", "customers_phone_clean"),
    ("customers", "phone_secondary", "555\n123-4568", "customers_phone_secondary_clean"),
    ("customers", "email", "ann\x7f@example.com", "customers_email_clean"),
    ("customers", "address", "1 Main\x85St", "customers_address_clean"),
    ("customers", "notes", "a\rb", "customers_notes_clean"),
    ("customers", "name", "Mu\u0308ller", "customers_name_clean"),
    ("customers", "notes", "cafe\u0301", "customers_notes_clean"),
    ("users", "full_name", "Clerk\tKent", "users_full_name_clean"),
    ("users", "email", "Ze\u0301@example.com", "users_email_clean"),
    ("users", "email", "not-an-address", "users_email_shape"),
]


@pytest.mark.parametrize(("table", "column", "value", "constraint"), HAND_WRITTEN)
def test_the_database_refuses_the_same_by_hand(
    conn: psycopg.Connection[Any], table: str, column: str, value: str, constraint: str
) -> None:
    base = {"customers": {"name": "Ann", "phone": "555-123-4567"}, "users": {"full_name": "Ann"}}
    row = {**base[table], column: value}
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
    )
    with pytest.raises(errors.CheckViolation) as caught:
        conn.execute(statement, list(row.values()))
    assert caught.value.diag.constraint_name == constraint


def test_multi_line_fields_written_by_hand_may_hold_newlines_and_tabs(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(
        "INSERT INTO customers (name, phone, address, notes) VALUES (%s, %s, %s, %s)",
        ["Ann", "555-123-4567", "1 Main St\nSpringfield", "a\tb"],
    )


def _migrate_up_to(dsn: str, tmp_path: Path, last: str) -> None:
    """Migrate ``dsn`` as a checkout whose newest migration was ``last`` would."""
    migrate(dsn, directory=checkout_up_to(tmp_path / "migrations", last))


def test_the_migration_refuses_rows_that_break_the_rules_and_says_how_to_find_them(
    empty_dsn: str, tmp_path: Path
) -> None:
    _migrate_up_to(empty_dsn, tmp_path, "0003_version_stamp")  # before text hygiene
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers (name, phone) VALUES (%s, %s), (%s, %s), (%s, %s)",
            ["Ann\x1b", "555-000-0001", "Bo", "555-000-0002", "Mu\u0308ller", "555-000-0003"],
        )
    with pytest.raises(MigrationError, match=r"2 customer\(s\) and 0 user\(s\)") as caught:
        migrate(empty_dsn)
    listing = str(caught.value).split("list them with: ")[1].split(" (and the same")[0]
    with psycopg.connect(empty_dsn) as conn:
        assert len(conn.execute(listing).fetchall()) == 2
        assert conn.execute("SELECT count(*) FROM customers").fetchone() == (3,)


# ---- search whatever the server's locale -------------------------------------


@pytest.fixture
def c_locale_dsn(server_dsn: str) -> Iterator[str]:
    """A database created WITH LC_CTYPE 'C' LC_COLLATE 'C' (as many managed servers), migrated."""
    name = f"cdal_c_locale_{os.getpid()}_{next(_names)}"
    create = sql.SQL(
        "CREATE DATABASE {} WITH TEMPLATE template0 ENCODING 'UTF8' "
        "LOCALE_PROVIDER libc LC_COLLATE 'C' LC_CTYPE 'C'"
    ).format(sql.Identifier(name))
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(create)
        try:
            dsn = with_database(server_dsn, name)
            migrate(dsn)
            yield dsn
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("Jürgen Müller", "MÜLLER"),
        ("Jürgen Müller", "müller"),
        ("JÜRGEN MÜLLER", "jürgen"),
        ("ΟΛΥΜΠΊΑ Παπαδοπούλου", "ολυμπία"),
        ("Ολυμπία Παπαδοπούλου", "ΟΛΥΜΠΊΑ"),
        ("Łukasz Żółć", "ŻÓŁĆ"),
        ("Иван Петров", "ПЕТР"),
    ],
)
def test_search_ignores_case_in_every_alphabet_on_a_c_locale_database(
    c_locale_dsn: str, name: str, query: str
) -> None:
    with psycopg.connect(c_locale_dsn, autocommit=True) as conn:
        [(ctype,)] = conn.execute(
            "SELECT datctype FROM pg_database WHERE datname = current_database()"
        ).fetchall()
        assert ctype == "C"
        customers = CustomerRepository(conn)
        found = customers.create({"name": name, "phone": "555-123-4567"})
        customers.create({"name": "Zed Other", "phone": "555-765-4321"})
        assert [c.id for c in customers.search(query)] == [found.id]
        # the prefix tier folds alike: a query that starts the name ranks it first
        assert [c.id for c in customers.search(name.split(maxsplit=1)[0].upper())][:1] == [found.id]


def test_ordering_on_a_c_locale_database_ignores_case_too(c_locale_dsn: str) -> None:
    with psycopg.connect(c_locale_dsn, autocommit=True) as conn:
        customers = CustomerRepository(conn)
        for index, name in enumerate(["émile", "Zoë", "ÉMILE B", "adam"]):
            customers.create({"name": name, "phone": f"555-000-000{index}"})
        # Accents fold too (migration 0008): é sorts with e, not after z.
        assert [c.name for c in customers.list().customers] == ["adam", "émile", "ÉMILE B", "Zoë"]


# ---- address and notes have a length limit, in the models and the database ----


def test_address_and_notes_have_a_length_limit(customers: CustomerRepository) -> None:
    longest = customers.create(
        {**ANN, "address": "a" * MAX_ADDRESS_LENGTH, "notes": "n\t\nö" * (MAX_NOTES_LENGTH // 4)}
    )
    assert len(longest.notes or "") == MAX_NOTES_LENGTH
    with pytest.raises(ValidationError, match=r"address\n.*at most 1000 characters"):
        customers.update(longest.id, {"address": "a" * (MAX_ADDRESS_LENGTH + 1)})
    with pytest.raises(ValidationError, match=r"notes\n.*at most 100000 characters"):
        customers.update(longest.id, {"notes": "n" * (MAX_NOTES_LENGTH + 1)})


@pytest.mark.parametrize(
    ("column", "length", "constraint"),
    [
        ("address", MAX_ADDRESS_LENGTH + 1, "customers_address_length"),
        ("notes", MAX_NOTES_LENGTH + 1, "customers_notes_length"),
    ],
)
def test_the_database_enforces_the_length_limits_by_hand(
    conn: psycopg.Connection[Any], column: str, length: int, constraint: str
) -> None:
    with pytest.raises(errors.CheckViolation) as caught:
        conn.execute(
            sql.SQL(
                "INSERT INTO customers (name, phone, {}) VALUES ('Ann', '5551234567', %s)"
            ).format(sql.Identifier(column)),
            ["x" * length],
        )
    assert caught.value.diag.constraint_name == constraint


def test_the_length_migration_refuses_longer_rows_and_says_how_to_find_them(
    empty_dsn: str, tmp_path: Path
) -> None:
    _migrate_up_to(empty_dsn, tmp_path, "0006_locale_independent_search")  # before the limits
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO customers (name, phone, notes) VALUES ('Ann', '5551234567', %s)",
            ["x" * (MAX_NOTES_LENGTH + 1)],
        )
    with pytest.raises(MigrationError, match=r"1 customer\(s\) have an address over") as caught:
        migrate(empty_dsn)
    listing = str(caught.value).split("list them with: ")[1].split("; shorten")[0]
    with psycopg.connect(empty_dsn) as conn:
        assert len(conn.execute(listing).fetchall()) == 1
