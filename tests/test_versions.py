"""Optimistic concurrency: updated_at is a version stamp, and expected_updated_at
turns "the last writer wins" into "only if nobody changed it since I read it"."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from pydantic import ValidationError

from customer_dal import CustomerRepository, StaleUpdateError, connect

from .flavours import Flavour, each_flavour  # noqa: F401 - each test runs once per flavour
from .threads import run_together

ANN = {"name": "Ann Lee", "phone": "555-123-4567"}
ROUNDS = 100
CLERKS = 4


def test_updated_at_strictly_increases_within_one_transaction(
    repo_conn: psycopg.Connection[object], customers: CustomerRepository
) -> None:
    ann = customers.create(ANN)
    stamps = [ann.updated_at]
    with repo_conn.transaction():  # now() stands still in here
        for note in ("a", "b", "c"):
            updated = customers.update(ann.id, {"notes": note})
            assert updated is not None
            stamps.append(updated.updated_at)
        assert customers.soft_delete(ann.id)
        restored = customers.restore(ann.id)
        assert restored is not None
        stamps.append(restored.updated_at)
    assert stamps == sorted(set(stamps))


def test_updated_at_strictly_increases_for_updates_typed_in_sql(
    conn: psycopg.Connection[object], customers: CustomerRepository
) -> None:
    ann = customers.create(ANN)
    with conn.transaction():
        stamps = [
            conn.execute(
                "UPDATE customers SET notes = %s WHERE id = %s RETURNING updated_at", [n, ann.id]
            ).fetchone()
            for n in "xyz"
        ]
    assert stamps == sorted(set(stamps))
    assert all(stamp[0] > ann.updated_at for stamp in stamps)  # type: ignore[index]


def test_a_stale_update_raises_and_writes_nothing(customers: CustomerRepository) -> None:
    ann = customers.create(ANN)
    theirs = customers.update(ann.id, {"notes": "theirs"}, expected_updated_at=ann.updated_at)
    assert theirs is not None
    with pytest.raises(StaleUpdateError) as caught:
        customers.update(ann.id, {"notes": "mine"}, expected_updated_at=ann.updated_at)
    assert (caught.value.customer_id, caught.value.current_updated_at) == (
        ann.id,
        theirs.updated_at,
    )
    assert "read it again" in str(caught.value)
    assert customers.get(ann.id) == theirs


def test_soft_delete_and_restore_take_the_expected_version_too(
    customers: CustomerRepository,
) -> None:
    ann = customers.create(ANN)
    changed = customers.update(ann.id, {"notes": "x"})
    assert changed is not None
    with pytest.raises(StaleUpdateError):
        customers.soft_delete(ann.id, expected_updated_at=ann.updated_at)
    assert customers.soft_delete(ann.id, expected_updated_at=changed.updated_at)
    deleted = customers.get(ann.id, include_inactive=True)
    assert deleted is not None
    with pytest.raises(StaleUpdateError):
        customers.restore(ann.id, expected_updated_at=changed.updated_at)
    restored = customers.restore(ann.id, expected_updated_at=deleted.updated_at)
    assert restored is not None
    assert restored.is_active


def test_a_missing_or_inactive_customer_is_none_not_stale(customers: CustomerRepository) -> None:
    ann = customers.create(ANN)
    stamp = ann.updated_at
    assert customers.update(ann.id + 1, {"notes": "x"}, expected_updated_at=stamp) is None
    assert customers.soft_delete(ann.id + 1, expected_updated_at=stamp) is False
    assert customers.restore(ann.id, expected_updated_at=stamp) is None  # active: nothing to do
    assert customers.soft_delete(ann.id)
    deleted = customers.get(ann.id, include_inactive=True)
    assert deleted is not None
    assert customers.update(ann.id, {"notes": "x"}, expected_updated_at=deleted.updated_at) is None


@pytest.mark.parametrize(
    "stamp",
    ["2026-01-01T00:00:00+00:00", datetime(2026, 1, 1), 1_700_000_000],
    ids=["text", "naive", "number"],
)
def test_the_expected_version_is_an_aware_datetime(
    customers: CustomerRepository, stamp: object
) -> None:
    with pytest.raises(ValidationError, match="expected_updated_at"):
        customers.update(1, {"notes": "x"}, expected_updated_at=stamp)  # type: ignore[arg-type]


def test_a_version_in_another_time_zone_is_the_same_instant(customers: CustomerRepository) -> None:
    ann = customers.create(ANN)
    elsewhere = ann.updated_at.astimezone(timezone(timedelta(hours=-7)))
    assert customers.update(ann.id, {"notes": "x"}, expected_updated_at=elsewhere) is not None


def _clerks_appending(dsn: str, flavour: Flavour, *, careful: bool) -> str:
    """CLERKS threads, each on its own connection, each appending ROUNDS marks to notes
    (for the async API, each thread's calls are tasks on one event loop)."""
    with connect(dsn) as conn:
        ann = CustomerRepository(conn).create({**ANN, "notes": ""})

    def clerk(index: int) -> int:
        retries = 0
        with flavour.connect(dsn) as conn:
            customers = flavour.customers(conn)
            for round_ in range(ROUNDS):
                while True:
                    seen = customers.get(ann.id)
                    assert seen is not None
                    notes = f"{seen.notes or ''}[{index}:{round_}]"
                    version = seen.updated_at if careful else None
                    try:
                        customers.update(ann.id, {"notes": notes}, expected_updated_at=version)
                        break
                    except StaleUpdateError:
                        retries += 1
        return retries

    outcomes = run_together(clerk, CLERKS)
    assert all(isinstance(outcome, int) for outcome in outcomes), outcomes
    with connect(dsn) as conn:
        final = CustomerRepository(conn).get(ann.id)
    assert final is not None
    return final.notes or ""


@pytest.mark.slow
def test_with_the_expected_version_no_concurrent_append_is_lost(dsn: str, flavour: Flavour) -> None:
    notes = _clerks_appending(dsn, flavour, careful=True)
    assert notes.count("[") == CLERKS * ROUNDS
    for index in range(CLERKS):
        for round_ in range(ROUNDS):
            assert f"[{index}:{round_}]" in notes


@pytest.mark.slow
def test_without_it_the_last_writer_wins(dsn: str, flavour: Flavour) -> None:
    """Documents the default: read-modify-write without a version loses concurrent edits."""
    notes = _clerks_appending(dsn, flavour, careful=False)
    assert notes.count("[") < CLERKS * ROUNDS  # some appends were overwritten
