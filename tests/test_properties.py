"""Property-based: any valid CustomerCreate round-trips unchanged; any invalid one
is refused without writing a row."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from customer_dal import CustomerCreate, CustomerRepository

_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    max_size=300,
)
_name = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Zs", "Cc"]), min_size=1, max_size=100
)
_phone = st.builds(
    lambda digits, sep: sep.join([digits[:3], digits[3:6], digits[6:]]).strip(),
    st.text(alphabet="0123456789", min_size=7, max_size=12),
    st.sampled_from(["", "-", " ", "."]),
)
_email = st.emails().filter(lambda e: len(e) <= 100)


@st.composite
def valid_customers(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "name": draw(_name),
        "phone": draw(_phone),
        "phone_secondary": draw(st.none() | _phone),
        "email": draw(st.none() | _email),
        "address": draw(st.none() | _text),
        "notes": draw(st.none() | _text),
    }


@_SETTINGS
@given(data=valid_customers())
def test_a_valid_customer_round_trips_unchanged(
    customers: CustomerRepository, conn: psycopg.Connection[Any], data: dict[str, Any]
) -> None:
    conn.execute("DELETE FROM customers")  # one fixture database for every example
    try:
        model = CustomerCreate.model_validate(data)
    except ValidationError:
        return  # e.g. an address hypothesis made that email-validator rejects
    created = customers.create(model)
    fetched = customers.get(created.id)
    assert fetched == created
    assert CustomerCreate.model_validate(fetched, from_attributes=True) == model


_invalid_field = st.sampled_from(
    [
        (
            "name",
            st.sampled_from(["", " ", "\t"])
            | st.text(alphabet=st.characters(categories=["L", "N"]), min_size=101, max_size=120),
        ),
        ("phone", st.text(alphabet="0123456789-", max_size=6).filter(lambda p: p.count("-") < 6)),
        ("phone", st.text(alphabet="0123456789", min_size=21, max_size=30)),
        ("email", st.text(alphabet="abc .", min_size=1, max_size=20).filter(str.strip)),
        ("notes", st.text(min_size=1).map(lambda t: t + "\x00")),
    ]
)


@_SETTINGS
@given(base=valid_customers(), invalid=_invalid_field, data=st.data())
def test_an_invalid_customer_is_refused_without_a_row(
    customers: CustomerRepository,
    conn: psycopg.Connection[Any],
    base: dict[str, Any],
    invalid: tuple[str, st.SearchStrategy[str]],
    data: st.DataObject,
) -> None:
    conn.execute("DELETE FROM customers")  # one fixture database for every example
    field, strategy = invalid
    bad = {**base, field: data.draw(strategy)}
    with pytest.raises(ValidationError) as caught:
        customers.create(bad)
    assert field in {error["loc"][0] for error in caught.value.errors()}
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (0,)
