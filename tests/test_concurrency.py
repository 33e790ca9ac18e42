"""The database, not a check-then-insert in Python, decides who gets a phone number:
threads racing on the sync API, asyncio tasks racing on the async one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import psycopg
import pytest

from customer_dal import AsyncCustomerRepository, Customer, CustomerRepository, DuplicatePhoneError

from .flavours import Flavour, each_flavour  # noqa: F401 - each test runs once per flavour
from .threads import run_together

FORMATS = [
    "5551234567",
    "555-123-4567",
    "(555) 123-4567",
    "555.123.4567",
    "555 123 4567",
    "+555 123 4567",
    "555/123/4567",
    "(555)1234567",
]


def _race(flavour: Flavour, dsn: str, calls: list[Callable[[Any], Any]]) -> list[Any]:
    """Run each call on its own connection, all released at the same instant: in threads,
    or for the async API as tasks on one event loop."""
    if flavour.is_async:
        return flavour.run(_race_tasks(dsn, calls))

    def call(index: int) -> Any:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return calls[index](CustomerRepository(conn))

    return run_together(call, len(calls))


async def _race_tasks(dsn: str, calls: list[Callable[[Any], Any]]) -> list[Any]:
    async with AsyncExitStack() as stack:
        repos = [
            AsyncCustomerRepository(
                await stack.enter_async_context(
                    await psycopg.AsyncConnection.connect(dsn, autocommit=True)
                )
            )
            for _ in calls
        ]
        # Every connection is open: the calls start together, and interleave at each await.
        return await asyncio.gather(
            *(call(repo) for call, repo in zip(calls, repos, strict=True)), return_exceptions=True
        )


def _split(outcomes: list[Any]) -> tuple[list[Customer], list[DuplicatePhoneError]]:
    won = [o for o in outcomes if isinstance(o, Customer)]
    lost = [o for o in outcomes if isinstance(o, DuplicatePhoneError)]
    assert len(won) + len(lost) == len(outcomes)
    return won, lost


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_creates_with_one_number_in_many_formats_make_one_customer(
    dsn: str, conn: psycopg.Connection[Any], attempt: int, flavour: Flavour
) -> None:
    outcomes = _race(
        flavour,
        dsn,
        [
            lambda repo, phone=phone, i=i: repo.create({"name": f"Racer {i}", "phone": phone})
            for i, phone in enumerate(FORMATS)
        ],
    )
    won, lost = _split(outcomes)
    assert len(won) == 1
    assert len(lost) == len(FORMATS) - 1
    assert {error.existing_id for error in lost} == {won[0].id}
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (1,)


def test_concurrent_updates_and_restores_obey_the_same_rule(
    dsn: str, customers: CustomerRepository, conn: psycopg.Connection[Any], flavour: Flavour
) -> None:
    movers = [
        customers.create({"name": f"Mover {i}", "phone": f"555-000-000{i}"}) for i in range(4)
    ]
    sleeper = customers.create({"name": "Sleeper", "phone": "555-999-9999"})
    customers.soft_delete(sleeper.id)
    customers.update(sleeper.id, {})  # inactive: untouched
    conn.execute("UPDATE customers SET phone = '(555) 123-4567' WHERE id = %s", [sleeper.id])

    calls: list[Callable[[Any], Any]] = [
        lambda repo, m=m, f=f: repo.update(m.id, {"phone": f})
        for m, f in zip(movers, FORMATS, strict=False)
    ]
    calls.append(lambda repo: repo.restore(sleeper.id))
    won, lost = _split(_race(flavour, dsn, calls))
    assert len(won) == 1
    assert len(lost) == len(calls) - 1
    holders = conn.execute(
        "SELECT count(*) FROM customers WHERE is_active AND phone_digits = '5551234567'"
    ).fetchone()
    assert holders == (1,)


def test_threads_sharing_a_repository_do_not_share_cursors(
    customers: CustomerRepository,
) -> None:
    """psycopg serialises a connection's queries; each thread keeps its own cursor (and
    each async call, its own: the threads' calls are then tasks on one event loop).

    (Transactions belong to the connection, so code that opens them, search
    included, needs a connection per thread: a pool.)
    """
    ann = customers.create({"name": "Ann Lee", "phone": "555-123-4567"})

    def read(_: int) -> bool:
        return all(
            customers.get(ann.id) == ann and customers.get_by_phone("5551234567") == ann
            for _ in range(50)
        )

    assert run_together(read, 4) == [True] * 4
