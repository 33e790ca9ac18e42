"""CustomerRepository.search: substring on names and e-mails, digits on phones,
literal wildcards, and a deterministic, relevant order."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from customer_dal import CustomerRepository, SchemaNotReadyError

from .flavours import each_flavour  # noqa: F401 - each test runs once per flavour


@pytest.fixture
def shop(customers: CustomerRepository) -> dict[str, int]:
    rows = [
        {"name": "José Álvarez", "phone": "555 777 8888", "email": "jose@correo.es"},
        {"name": "Ann Lee", "phone": "(555) 123-4567", "phone_secondary": "555-100-0000"},
        {"name": "100% Pure Juice", "phone": "555-222-3333"},
        {"name": "Under_score Ltd", "phone": "555-444-5555", "email": "billing@under.co"},
        {"name": "Back\\slash Bar", "phone": "555-666-1000"},
        {"name": "Leeann Smith", "phone": "555-999-0001", "email": "lee@example.com"},
        {"name": "Annette Lee", "phone": "555-999-0002"},
    ]
    ids = {row["name"]: customers.create(row).id for row in rows}
    gone = customers.create({"name": "Ann Gone", "phone": "555-000-0009"})
    customers.soft_delete(gone.id)
    ids["Ann Gone"] = gone.id
    return ids


def names(found: list[Any]) -> list[str]:
    return [customer.name for customer in found]


def test_names_match_as_substrings_ignoring_case_in_every_alphabet(
    customers: CustomerRepository, shop: dict[str, int]
) -> None:
    assert names(customers.search("JOSÉ")) == ["José Álvarez"]
    assert names(customers.search("álvar")) == ["José Álvarez"]
    assert names(customers.search("lee")) == ["Leeann Smith", "Ann Lee", "Annette Lee"]


def test_emails_match_as_substrings(customers: CustomerRepository, shop: dict[str, int]) -> None:
    assert names(customers.search("CORREO.es")) == ["José Álvarez"]
    assert names(customers.search("@under")) == ["Under_score Ltd"]


def test_phone_digits_match_whatever_the_formatting(
    customers: CustomerRepository, shop: dict[str, int]
) -> None:
    assert names(customers.search("777-88")) == ["José Álvarez"]
    assert names(customers.search("(123) 45")) == ["Ann Lee"]
    assert names(customers.search("100-00")) == ["Ann Lee"]  # the secondary phone


def test_an_exact_phone_match_comes_first(
    customers: CustomerRepository, shop: dict[str, int]
) -> None:
    customers.create({"name": "Aaron 555.999.0001 fan", "phone": "555-000-0100"})
    assert names(customers.search("555.999.0001")) == ["Leeann Smith", "Aaron 555.999.0001 fan"]


def test_names_starting_with_the_query_come_before_other_matches(
    customers: CustomerRepository, shop: dict[str, int]
) -> None:
    assert names(customers.search("ann")) == ["Ann Lee", "Annette Lee", "Leeann Smith"]


def test_a_query_that_is_not_phone_like_is_matched_as_text_only(
    customers: CustomerRepository, shop: dict[str, int]
) -> None:
    # "100%" must not match every phone containing 100, nor "%" act as a wildcard.
    assert names(customers.search("100%")) == ["100% Pure Juice"]
    assert names(customers.search("12")) == []  # too few digits for a phone search


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("0% p", ["100% Pure Juice"]),
        ("r_s", ["Under_score Ltd"]),
        ("k\\s", ["Back\\slash Bar"]),
        ("%", []),
        ("_", []),
        ("%%%", []),
        ("___", []),
    ],
)
def test_like_wildcards_are_literal_characters(
    customers: CustomerRepository, shop: dict[str, int], query: str, expected: list[str]
) -> None:
    assert names(customers.search(query)) == expected


def test_one_or_two_characters_match_name_and_email_prefixes_only(
    customers: CustomerRepository, shop: dict[str, int]
) -> None:
    assert names(customers.search("an")) == ["Ann Lee", "Annette Lee"]
    assert names(customers.search("B")) == ["Back\\slash Bar", "Under_score Ltd"]  # billing@
    assert names(customers.search("é")) == []  # inside "José", not at the start


def test_inactive_customers_only_when_asked(
    customers: CustomerRepository, shop: dict[str, int]
) -> None:
    assert "Ann Gone" not in names(customers.search("ann"))
    assert "Ann Gone" in names(customers.search("ann", include_inactive=True))


def test_pages_never_overlap_or_skip(customers: CustomerRepository) -> None:
    for i in range(25):
        customers.create({"name": f"Smith {i % 5}", "phone": f"555-010-{i:04d}"})
    everything = customers.search("smith", limit=100)
    pages = [customers.search("smith", limit=4, offset=offset) for offset in range(0, 28, 4)]
    assert [c.id for page in pages for c in page] == [c.id for c in everything]
    assert len(everything) == 25


@pytest.mark.parametrize(
    ("query", "limit", "offset"),
    [("", 20, 0), ("   ", 20, 0), ("x" * 101, 20, 0), ("ann", 0, 0), ("ann", 101, 0), ("a", 5, -1)],
)
def test_invalid_searches_are_validation_errors(
    customers: CustomerRepository, query: str, limit: int, offset: int
) -> None:
    with pytest.raises(ValidationError):
        customers.search(query, limit=limit, offset=offset)


@pytest.mark.parametrize(
    "query",
    [
        "'; DROP TABLE customers; --",
        "Robert'); DELETE FROM customers WHERE ('1'='1",
        "%%%___\\\\",
        "\\%",
        "x" * 100,
        "ann\x00",
        "lee\x1fann",
        "$1 %(pattern)s {name}",
    ],
)
def test_hostile_queries_return_results_or_a_validation_error_and_change_nothing(
    customers: CustomerRepository,
    conn: psycopg.Connection[Any],
    shop: dict[str, int],
    query: str,
) -> None:
    before = conn.execute("SELECT * FROM customers ORDER BY id").fetchall()
    try:
        found = customers.search(query)
    except ValidationError:
        found = []
    assert found == []
    assert conn.execute("SELECT * FROM customers ORDER BY id").fetchall() == before


def test_dense_matches_are_found_by_walking_in_order(customers: CustomerRepository) -> None:
    """Matches that are common are read in name order, without sorting them all."""
    for i in range(30):
        customers.create({"name": f"{chr(65 + i % 26)}{i} Dense", "phone": f"555-020-{i:04d}"})
    found = customers.search("dense", limit=5)
    assert names(found) == ["A0 Dense", "A26 Dense", "B1 Dense", "B27 Dense", "C2 Dense"]
    assert names(customers.search("dense", limit=5, offset=5)) == [
        "C28 Dense",
        "D29 Dense",
        "D3 Dense",
        "E4 Dense",
        "F5 Dense",
    ]


def test_long_names_that_share_their_first_24_bytes_come_in_name_order(
    customers: CustomerRepository,
) -> None:
    """The ordered index sorts by a name's first 24 bytes, then id: the search puts
    longer names that share them back into name order, on every page."""
    stem = "Maximiliana Featherstone-"  # 25 bytes
    for suffix in ("Zulu", "Alpha", "Mike", "Bravo", "Yankee"):
        customers.create(
            {"name": stem + suffix, "phone": f"555-040-{len(suffix):02d}{ord(suffix[0])}"}
        )
    assert names(customers.search("eatherstone", limit=2)) == [stem + "Alpha", stem + "Bravo"]
    assert names(customers.search("eatherstone", limit=2, offset=2)) == [
        stem + "Mike",
        stem + "Yankee",
    ]


def test_a_query_without_a_letter_or_digit_matches_prefixes_only(
    customers: CustomerRepository,
) -> None:
    """It has no trigram to search by: like a 1-2 character query, prefixes only."""
    customers.create({"name": "...And Sons", "phone": "555-050-0001"})
    customers.create({"name": "Dot...Com", "phone": "555-050-0002", "email": "-dash@example.com"})
    assert names(customers.search("...")) == ["...And Sons"]
    assert names(customers.search("-da")) == ["Dot...Com"]  # its e-mail starts with it
    assert names(customers.search("---")) == []


def test_one_or_two_digits_match_email_prefixes_not_phones(customers: CustomerRepository) -> None:
    customers.create({"name": "Ann Lee", "phone": "155-050-0003"})
    customers.create({"name": "Bob Ray", "phone": "555-050-0004", "email": "15bob@example.com"})
    assert names(customers.search("15")) == ["Bob Ray"]


def test_a_phone_typed_with_separators_also_matches_text_as_typed(
    customers: CustomerRepository,
) -> None:
    """Its digits match phones however formatted; the query as typed matches names."""
    customers.create({"name": "Desk 555-12 North", "phone": "777-000-0001"})
    customers.create({"name": "Desk (555) South", "phone": "777-000-0002"})
    customers.create({"name": "Ann Lee", "phone": "555-120-0003"})
    assert names(customers.search("555-12")) == ["Ann Lee", "Desk 555-12 North"]
    assert names(customers.search("(555)")) == ["Ann Lee", "Desk (555) South"]


# Queries of every kind: text, accents, e-mail, phones, a prefix, inactive ones.
_EVERY_KIND = ["lee", "alvarez", "@under", "777-88", "5551234567", "100-00", "an", "zz-nothing"]


def _every_kind(customers: CustomerRepository) -> dict[str, list[list[str]]]:
    """Each query's first page, and a page past an offset."""
    return {
        q: [
            names(customers.search(q, include_inactive=True, **page))
            for page in ({}, {"limit": 2, "offset": 1})
        ]
        for q in _EVERY_KIND
    }


def test_an_index_a_migration_is_still_building_is_waited_for_not_read_without(
    customers: CustomerRepository,
    shop: dict[str, int],
    conn: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While CREATE INDEX CONCURRENTLY builds 0010's index (or after it failed), the
    function search orders by exists but the index does not: search must not read
    and sort the table, and uses 0008's indexes; and without those, 0006's."""
    expected = _every_kind(customers)
    conn.execute("DROP INDEX customers_search_ordered_idx")
    with caplog.at_level(logging.DEBUG, logger="customer_dal.queries"):
        assert _every_kind(customers) == expected
    assert _fallbacks_run(caplog) == {"search_folded"}
    conn.execute("DROP INDEX customers_folded_order_idx")
    caplog.clear()
    accents_count = {
        query: [[], []] if query == "alvarez" else pages for query, pages in expected.items()
    }
    with caplog.at_level(logging.DEBUG, logger="customer_dal.queries"):
        assert _every_kind(customers) == accents_count
    assert _fallbacks_run(caplog) == {"search_legacy"}
    assert expected["alvarez"][0] == ["José Álvarez"]
    assert expected["lee"][1] == ["Ann Lee", "Annette Lee"]  # past "Leeann Smith"


def _fallbacks_run(caplog: pytest.LogCaptureFixture) -> set[str]:
    """The fallback search statements the logged searches ran (DEBUG names each query)."""
    names = {record.getMessage().split(":")[0] for record in caplog.records}
    return names - {"search", "search_settings"}


def test_a_schema_that_lost_a_table_search_reads_is_not_migrated(
    customers: CustomerRepository, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("DROP TABLE users CASCADE")
    with pytest.raises(SchemaNotReadyError, match="is not migrated"):
        customers.search("ann")
