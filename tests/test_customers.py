"""CustomerRepository and AsyncCustomerRepository against the real database; results are
checked with raw SQL."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from pydantic import ValidationError

from customer_dal import (
    ConstraintViolationError,
    Customer,
    CustomerCreate,
    CustomerList,
    CustomerRepository,
    CustomerUpdate,
    DuplicatePhoneError,
    UnknownUserError,
    UserRepository,
)

from .flavours import Flavour, each_flavour  # noqa: F401 - each test runs once per flavour

ANN = {"name": "Ann Lee", "phone": "(555) 123-4567"}


def _row(conn: psycopg.Connection[Any], customer_id: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT name, phone, phone_secondary, email, address, notes, is_active, created_by_id "
        "FROM customers WHERE id = %s",
        [customer_id],
    ).fetchone()
    assert row is not None
    return row


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert row is not None
    return int(row[0])


# --- create -----------------------------------------------------------------------------


def test_create_stores_trimmed_values_and_returns_the_customer(
    customers: CustomerRepository, users: UserRepository, conn: psycopg.Connection[Any]
) -> None:
    clerk = users.create("Clerk Kent")
    created = customers.create(
        {
            "name": "  Ann Lee ",
            "phone": " 555-123-4567",
            "phone_secondary": "555 987 6543 ",
            "email": " Ann@Shop.COM ",
            "address": "1 Main St",
            "notes": "  ",
        },
        created_by_id=clerk.id,
    )
    assert isinstance(created, Customer)
    assert _row(conn, created.id) == (
        "Ann Lee",
        "555-123-4567",
        "555 987 6543",
        "Ann@shop.com",
        "1 Main St",
        None,
        True,
        clerk.id,
    )
    assert created.created_by_name == "Clerk Kent"
    assert created.display_phones == "555-123-4567 / 555 987 6543"
    assert created.created_at == created.updated_at


def test_create_accepts_a_model_and_no_creator(customers: CustomerRepository) -> None:
    created = customers.create(CustomerCreate(**ANN))
    assert (created.created_by_id, created.created_by_name) == (None, None)
    assert created.display_phones == "(555) 123-4567"


def test_a_duplicate_phone_in_another_format_names_the_holder(
    customers: CustomerRepository, conn: psycopg.Connection[Any]
) -> None:
    ann = customers.create(ANN)
    with pytest.raises(DuplicatePhoneError) as caught:
        customers.create({"name": "Bob", "phone": "555.123.4567"})
    assert (caught.value.phone, caught.value.existing_id) == ("555.123.4567", ann.id)
    assert f"customer {ann.id}" in str(caught.value)
    assert _count(conn) == 1


def test_a_shared_secondary_phone_is_fine(customers: CustomerRepository) -> None:
    customers.create({**ANN, "phone_secondary": "555-777-8888"})
    customers.create({"name": "Bob", "phone": "555-000-0001", "phone_secondary": "5557778888"})


def test_an_unknown_creator_is_named(
    customers: CustomerRepository, conn: psycopg.Connection[Any]
) -> None:
    with pytest.raises(UnknownUserError, match="created_by_id 424242 names no user"):
        customers.create(ANN, created_by_id=424242)
    assert _count(conn) == 0


def test_a_rule_the_library_does_not_know_is_still_a_library_error(
    customers: CustomerRepository, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("ALTER TABLE customers ADD CONSTRAINT no_bobs CHECK (name <> 'Bob')")
    with pytest.raises(ConstraintViolationError, match=r"\(no_bobs\)") as caught:
        customers.create({"name": "Bob", "phone": "555-000-0001"})
    assert caught.value.constraint == "no_bobs"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "   "),
        ("name", "x" * 101),
        ("phone", "12-34-56"),
        ("phone", "5" * 21),
        ("phone_secondary", "123"),
        ("email", "not-an-email"),
        ("email", "ann@localhost"),
        ("notes", "nul\x00byte"),
        ("nickname", "extra fields are refused"),
    ],
)
def test_invalid_input_is_refused_before_any_sql(
    customers: CustomerRepository, conn: psycopg.Connection[Any], field: str, value: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        customers.create({**ANN, field: value})
    assert caught.value.errors()[0]["loc"] == (field,)
    assert _count(conn) == 0


# --- get, get_by_phone, count_active ---------------------------------------------------------


def test_get_hides_soft_deleted_customers_unless_asked(customers: CustomerRepository) -> None:
    ann = customers.create(ANN)
    assert customers.get(ann.id) == ann
    assert customers.soft_delete(ann.id)
    assert customers.get(ann.id) is None
    hidden = customers.get(ann.id, include_inactive=True)
    assert hidden is not None
    assert hidden.is_active is False
    assert customers.get(999_999) is None


def test_get_by_phone_matches_either_phone_in_any_format(customers: CustomerRepository) -> None:
    ann = customers.create({**ANN, "phone_secondary": "555-777-8888"})
    assert customers.get_by_phone("555.123.4567") == ann
    assert customers.get_by_phone("+(555) 777 8888") == ann
    assert customers.get_by_phone("555-000-0000") is None
    assert customers.get_by_phone("12") is None


def test_get_by_phone_prefers_a_primary_match_then_the_oldest(
    customers: CustomerRepository,
) -> None:
    older = customers.create(
        {"name": "Older", "phone": "555-000-0001", "phone_secondary": "5559990000"}
    )
    newer = customers.create(
        {"name": "Newer", "phone": "555-000-0002", "phone_secondary": "5559990000"}
    )
    assert customers.get_by_phone("555 999 0000") == older
    primary = customers.create({"name": "Primary", "phone": "555-999-0000"})
    assert customers.get_by_phone("555 999 0000") == primary
    customers.soft_delete(primary.id)
    customers.soft_delete(older.id)
    assert customers.get_by_phone("555 999 0000") == newer


def test_count_active(customers: CustomerRepository) -> None:
    assert customers.count_active() == 0
    ann = customers.create(ANN)
    customers.create({"name": "Bob", "phone": "555-000-0001"})
    customers.soft_delete(ann.id)
    assert customers.count_active() == 1


# --- update ---------------------------------------------------------------------------------


def test_update_writes_only_the_fields_that_were_set(
    customers: CustomerRepository, conn: psycopg.Connection[Any]
) -> None:
    ann = customers.create({**ANN, "email": "ann@shop.com", "notes": "VIP"})
    updated = customers.update(ann.id, {"notes": "  very important  ", "email": None})
    assert updated is not None
    assert _row(conn, ann.id) == (
        "Ann Lee",
        "(555) 123-4567",
        None,
        None,
        None,
        "very important",
        True,
        None,
    )
    assert updated.updated_at >= ann.updated_at
    assert customers.update(ann.id, CustomerUpdate()) == customers.get(ann.id)


def test_update_cannot_clear_name_or_phone(customers: CustomerRepository) -> None:
    ann = customers.create(ANN)
    for field in ("name", "phone"):
        with pytest.raises(ValidationError, match="cannot be cleared"):
            customers.update(ann.id, {field: None})


def test_update_of_a_missing_or_inactive_customer_returns_none(
    customers: CustomerRepository,
) -> None:
    ann = customers.create(ANN)
    customers.soft_delete(ann.id)
    assert customers.update(ann.id, {"notes": "x"}) is None
    assert customers.update(999_999, {"notes": "x"}) is None


def test_update_to_a_taken_phone_is_a_duplicate(
    customers: CustomerRepository, conn: psycopg.Connection[Any]
) -> None:
    ann = customers.create(ANN)
    bob = customers.create({"name": "Bob", "phone": "555-000-0001"})
    with pytest.raises(DuplicatePhoneError) as caught:
        customers.update(bob.id, {"phone": "5551234567"})
    assert caught.value.existing_id == ann.id
    assert _row(conn, bob.id)[1] == "555-000-0001"


def test_update_may_reformat_ones_own_phone(customers: CustomerRepository) -> None:
    ann = customers.create(ANN)
    updated = customers.update(ann.id, {"phone": "555.123.4567"})
    assert updated is not None
    assert updated.phone == "555.123.4567"


# --- soft_delete and restore -----------------------------------------------------------------


def test_soft_delete_keeps_the_row_and_frees_the_number(
    customers: CustomerRepository, conn: psycopg.Connection[Any]
) -> None:
    ann = customers.create(ANN)
    assert customers.soft_delete(ann.id) is True
    assert customers.soft_delete(ann.id) is False
    assert customers.soft_delete(999_999) is False
    assert _row(conn, ann.id)[6] is False
    customers.create({"name": "Bob", "phone": "555-123-4567"})


def test_restore_reactivates_unless_the_number_was_taken(customers: CustomerRepository) -> None:
    ann = customers.create(ANN)
    assert customers.restore(ann.id) is None  # active: nothing to restore
    customers.soft_delete(ann.id)
    restored = customers.restore(ann.id)
    assert restored is not None
    assert restored.is_active

    customers.soft_delete(ann.id)
    bob = customers.create({"name": "Bob", "phone": "555.123.4567"})
    with pytest.raises(DuplicatePhoneError) as caught:
        customers.restore(ann.id)
    assert (caught.value.phone, caught.value.existing_id) == ("(555) 123-4567", bob.id)
    assert customers.restore(999_999) is None


# --- list -----------------------------------------------------------------------------------


def test_list_pages_by_name_then_id_with_the_total(customers: CustomerRepository) -> None:
    names = ["Cleo", "Ann", "Bob", "Ann", "Dan"]
    created = [
        customers.create({"name": name, "phone": f"555-000-000{i}"}) for i, name in enumerate(names)
    ]
    customers.soft_delete(created[4].id)

    first = customers.list(page=1, per_page=2)
    second = customers.list(page=2, per_page=2)
    beyond = customers.list(page=9, per_page=2)
    assert isinstance(first, CustomerList)
    assert [c.id for c in first.customers] == [created[1].id, created[3].id]
    assert [c.name for c in second.customers] == ["Bob", "Cleo"]
    assert (first.total, first.page, first.per_page) == (4, 1, 2)
    assert (beyond.customers, beyond.total) == ([], 4)
    assert customers.list(per_page=100, include_inactive=True).total == 5


@pytest.mark.parametrize(("page", "per_page"), [(0, 20), (1, 0), (1, 101)])
def test_list_validates_its_paging(customers: CustomerRepository, page: int, per_page: int) -> None:
    with pytest.raises(ValidationError):
        customers.list(page=page, per_page=per_page)


# --- transactions ---------------------------------------------------------------------------


def test_calls_compose_in_the_callers_transaction_and_roll_back_together(
    customers: CustomerRepository, conn: psycopg.Connection[Any], repo_conn: Any
) -> None:
    class Abort(Exception):
        pass

    def register_then_fail() -> None:
        with repo_conn.transaction():
            ann = customers.create(ANN)
            customers.update(ann.id, {"notes": "x"})
            raise Abort

    with pytest.raises(Abort):
        register_then_fail()
    assert _count(conn) == 0


def test_an_expected_failure_leaves_the_callers_transaction_usable(
    customers: CustomerRepository, conn: psycopg.Connection[Any], repo_conn: Any
) -> None:
    with repo_conn.transaction():
        customers.create(ANN)
        with pytest.raises(DuplicatePhoneError):
            customers.create({"name": "Bob", "phone": "5551234567"})
        customers.create({"name": "Cleo", "phone": "555-000-0001"})
    assert _count(conn) == 2


def test_a_failed_call_leaves_the_connection_usable(
    customers: CustomerRepository,
) -> None:
    customers.create(ANN)
    with pytest.raises(DuplicatePhoneError):
        customers.create({"name": "Bob", "phone": "5551234567"})
    assert customers.count_active() == 1


def test_a_connection_without_autocommit_gets_its_own_transactions(
    dsn: str, flavour: Flavour
) -> None:
    with flavour.psycopg_connect(dsn) as conn:
        repo = flavour.customers(conn)
        ann = repo.create(ANN)
        with pytest.raises(DuplicatePhoneError):
            repo.create({"name": "Bob", "phone": "5551234567"})
        conn.commit()
    with psycopg.connect(dsn) as other:
        assert CustomerRepository(other).get(ann.id) == ann


def test_a_connection_with_another_row_factory_serves_the_repository_alike(
    dsn: str, flavour: Flavour
) -> None:
    with flavour.psycopg_connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        customers = flavour.customers(conn)
        ann = customers.create({"name": "Ann Lee", "phone": "555-123-4567"})
        assert customers.count_active() == 1
        assert customers.soft_delete(ann.id)
        assert customers.list(include_inactive=True).total == 1
