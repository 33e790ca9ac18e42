"""The bulk path under import and seed: all or nothing, every refusal explained."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from customer_dal import (
    ConstraintViolationError,
    CustomerRepository,
    DatabaseUnavailableError,
    UnknownUserError,
)
from customer_dal.bulk import CommitInterrupted, ImportRejectedError, Rejection, bulk_import
from customer_dal.errors import SchemaNotReadyError
from customer_dal.seed import fake_customers

COPYING = "c.tuples_processed > 0"  # a COPY into the database has started writing
COMMITTING = "a.query = 'COMMIT' AND a.state = 'active'"


def when_backend(
    dsn: str, condition: str, act: Callable[[psycopg.Connection[Any], int], None]
) -> threading.Thread:
    """A started thread that waits (a minute at most) until another backend of ``dsn``'s
    database matches ``condition`` (SQL over pg_stat_activity ``a`` and
    pg_stat_progress_copy ``c``), then calls ``act(its connection, that backend's pid)``."""
    query = (
        "SELECT a.pid FROM pg_stat_activity AS a LEFT JOIN pg_stat_progress_copy AS c USING (pid) "
        f"WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND {condition}"
    )

    def watch() -> None:
        with psycopg.connect(dsn, autocommit=True) as watcher:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                row = watcher.execute(query).fetchone()
                if row:
                    act(watcher, row[0])
                    return
                time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def terminate(watcher: psycopg.Connection[Any], pid: int) -> None:
    watcher.execute("SELECT pg_terminate_backend(%s)", [pid])


def interrupt_main_thread(watcher: psycopg.Connection[Any], pid: int) -> None:
    """Ctrl-C, as the terminal delivers it: SIGINT, handled in the main thread."""
    main = threading.main_thread().ident
    assert main is not None
    signal.pthread_kill(main, signal.SIGINT)


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert row is not None
    return int(row[0])


def rows(*values: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(line, value) for line, value in enumerate(values, start=2)]


GOOD = rows(
    {"name": "Ann", "phone": "555-000-0001", "email": "ann@example.com"},
    {"name": "Bob", "phone": "555-000-0002", "is_active": "false", "extra": "ignored"},
)


def test_a_clean_batch_is_written_in_order(conn: psycopg.Connection[Any]) -> None:
    result = bulk_import(conn, lambda: GOOD)
    assert (result.imported, result.rejected) == (2, 0)
    stored = conn.execute("SELECT name, email, is_active FROM customers ORDER BY id").fetchall()
    assert stored == [("Ann", "ann@example.com", True), ("Bob", None, False)]


def test_one_bad_row_refuses_the_whole_batch_and_every_bad_row_is_reported(
    conn: psycopg.Connection[Any], customers: CustomerRepository
) -> None:
    holder = customers.create({"name": "Holder", "phone": "555-999-0000"})
    heard: list[Rejection] = []
    batch = rows(
        {"name": "Ann", "phone": "555-000-0001"},
        {"name": " ", "phone": "12"},
        {"name": "Ann Again", "phone": "(555) 000-0001"},
        {"name": "Taken", "phone": "555.999.0000"},
        {"name": "Gone twin", "phone": "5550000001", "is_active": "no"},
        {"name": "Odd", "phone": "555-000-0003", "is_active": "maybe"},
    )
    with pytest.raises(ImportRejectedError, match="4 rows were refused, so nothing was imported"):
        bulk_import(conn, lambda: batch, on_reject=heard.append)
    assert _count(conn) == 1
    assert [(r.line, r.reason) for r in heard] == [  # in line order, whichever check refused
        (3, "name is required; phone '12' has 2 digits; at least 7 are needed"),
        (4, "phone '(555) 000-0001' repeats the phone of line 2"),
        (5, f"phone '555.999.0000' already belongs to active customer {holder.id}"),
        (7, "is_active must be true or false, not 'maybe'"),
    ]
    assert heard[0].values == {"name": " ", "phone": "12"}  # as given
    assert heard[1].values["phone"] == "(555) 000-0001"


def test_skip_invalid_writes_the_good_rows(conn: psycopg.Connection[Any]) -> None:
    heard: list[Rejection] = []
    batch = rows(
        {"name": "Ann", "phone": "555-000-0001"},
        {"name": "Ann Again", "phone": "555 000 0001"},
        {"name": "", "phone": "555-000-0002"},
        {"name": "Cleo", "phone": "555-000-0003"},
    )
    result = bulk_import(conn, lambda: batch, skip_invalid=True, on_reject=heard.append)
    assert (result.imported, result.rejected) == (2, 2)
    assert [r.line for r in heard] == [3, 4]
    names = conn.execute("SELECT name FROM customers ORDER BY id").fetchall()
    assert names == [("Ann",), ("Cleo",)]


def test_a_failure_while_reading_rolls_everything_back(conn: psycopg.Connection[Any]) -> None:
    def broken() -> Iterator[tuple[int, dict[str, Any]]]:
        yield from GOOD
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        bulk_import(conn, broken)
    assert _count(conn) == 0
    assert bulk_import(conn, lambda: GOOD).imported == 2  # no staging table left behind


def test_batches_compose_in_the_callers_transaction(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        bulk_import(conn, lambda: GOOD)
        bulk_import(conn, lambda: rows({"name": "Cleo", "phone": "555-000-0003"}))
    assert _count(conn) == 3


def test_progress_is_reported_as_rows_stream(conn: psycopg.Connection[Any]) -> None:
    seen: list[int] = []
    bulk_import(conn, lambda: fake_customers(25_000, seed=3), on_progress=seen.append)
    assert seen == [10_000, 20_000, 25_000]


def test_a_phone_taken_during_the_import_is_a_library_error(dsn: str) -> None:
    """Between the batch's check and its insert another writer takes a phone."""
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn) as other:
        conn.execute(
            "CREATE FUNCTION sneak() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO customers (name, phone) VALUES ('Sneak', NEW.phone); "
            "RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER sneak BEFORE INSERT ON customers FOR EACH ROW "
            "WHEN (NEW.name = 'Victim') EXECUTE FUNCTION sneak()"
        )
        with pytest.raises(Exception, match="customers_active_phone_key") as caught:
            bulk_import(conn, lambda: rows({"name": "Victim", "phone": "555-000-0009"}))
        assert type(caught.value).__name__ == "ConstraintViolationError"
        assert _count(conn) == 0
        other.close()


def test_fake_customers_are_deterministic_and_valid(conn: psycopg.Connection[Any]) -> None:
    first = list(fake_customers(300, seed=7))
    assert first == list(fake_customers(300, seed=7))
    assert first != list(fake_customers(300, seed=8))
    result = bulk_import(conn, lambda: first)
    assert (result.imported, result.rejected) == (300, 0)
    mix = conn.execute(
        "SELECT count(*) FILTER (WHERE NOT is_active), count(phone_secondary), count(email), "
        "count(DISTINCT phone_digits) FROM customers"
    ).fetchone()
    assert mix is not None
    inactive, secondary, email, distinct = mix
    assert 0 < inactive < 60
    assert 40 < secondary < 150
    assert 120 < email < 240
    assert distinct == 300


@pytest.mark.parametrize("count", [0, -5, 10**7 + 1])
def test_fake_customers_needs_a_sensible_count(count: int) -> None:
    with pytest.raises(ValueError, match="count must be"):
        next(fake_customers(count))


def test_an_unknown_creator_is_named_on_either_pass(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(UnknownUserError, match="created_by_id 4242"):
        bulk_import(conn, lambda: GOOD, created_by_id=4242)  # the straight pass
    with_a_repeat = [*GOOD, (9, {"name": "Ann twin", "phone": "555 000 0001"})]
    with pytest.raises(UnknownUserError, match="created_by_id 4242"):
        bulk_import(conn, lambda: with_a_repeat, skip_invalid=True, created_by_id=4242)
    assert _count(conn) == 0


def test_a_unique_rule_the_library_does_not_know_is_a_library_error(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("CREATE UNIQUE INDEX one_per_name ON customers (name)")
    twins = rows({"name": "Ann", "phone": "555-000-0001"}, {"name": "Ann", "phone": "555-000-0002"})
    with pytest.raises(ConstraintViolationError, match="one_per_name"):
        bulk_import(conn, lambda: twins)
    assert _count(conn) == 0


def test_the_checked_pass_says_what_it_does(conn: psycopg.Connection[Any]) -> None:
    seen: list[int | str] = []
    batch = [*fake_customers(10_000, seed=5), (10_001, {"name": "", "phone": "1"})]
    result = bulk_import(
        conn,
        lambda: batch,
        skip_invalid=True,
        on_progress=seen.append,
        on_phase=seen.append,
        on_reject=lambda rejection: seen.append(f"refused line {rejection.line}"),
    )
    assert result.rejected == 1
    assert seen == [
        10_000,  # the straight pass stops at the bad row
        "checking each row",
        10_000,
        10_001,
        "checking 10,001 rows for conflicts",
        "refused line 10001",
        "writing 10,000 rows",
    ]


def test_a_never_migrated_database_says_so(empty_dsn: str) -> None:
    with (
        psycopg.connect(empty_dsn, autocommit=True) as conn,
        pytest.raises(SchemaNotReadyError, match="is not migrated: run make migrate"),
    ):
        bulk_import(conn, lambda: GOOD)


def test_a_connection_lost_mid_copy_loses_the_whole_batch(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    watcher = when_backend(dsn, COPYING, terminate)
    with psycopg.connect(dsn, autocommit=True) as importing:
        with pytest.raises(DatabaseUnavailableError) as caught:
            bulk_import(importing, lambda: fake_customers(1_000_000, seed=1))
        assert importing.closed  # broken, so closed: the next step starts clean
    watcher.join()
    assert "the transaction was lost and nothing in it was committed" in str(caught.value)
    assert _count(conn) == 0


def test_ctrl_c_while_rows_stream_rolls_the_batch_back(conn: psycopg.Connection[Any]) -> None:
    def interrupted() -> Iterator[tuple[int, dict[str, Any]]]:
        yield from GOOD
        raise KeyboardInterrupt  # where Python delivers Ctrl-C: between two steps of ours

    with pytest.raises(KeyboardInterrupt) as caught:
        bulk_import(conn, interrupted)
    assert type(caught.value) is KeyboardInterrupt  # not CommitInterrupted: nothing was written
    assert _count(conn) == 0


def test_ctrl_c_during_the_commit_says_the_outcome_is_unknown(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    """A deferred trigger makes the commit slow enough to be interrupted."""
    conn.execute(
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$"
    )
    conn.execute(
        "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON customers "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
    )
    watcher = when_backend(dsn, COMMITTING, interrupt_main_thread)
    with (
        psycopg.connect(dsn, autocommit=True) as importing,
        pytest.raises(CommitInterrupted, match="may or may not have been written"),
    ):
        bulk_import(importing, lambda: GOOD[:1])
    watcher.join()
    assert _count(conn) == 0  # this time psycopg's cancel won the race with the commit
