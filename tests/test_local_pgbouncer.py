"""The PgBouncer launcher the tests and ``make bench`` share, where PgBouncer fails.

Its working path runs in every test of tests/test_pgbouncer.py and in the bench;
here, the ways it ends in one clear :class:`PgBouncerUnavailable` line, each with a
real program in PgBouncer's place (``CUSTOMER_DAL_PGBOUNCER``).
"""

from __future__ import annotations

import shutil

import pytest

from customer_dal.local_pgbouncer import BINARY_ENV, PgBouncerUnavailable, running_pgbouncer


def _started_as(
    monkeypatch: pytest.MonkeyPatch, program: str, server_dsn: str, start_timeout: float = 30
) -> str:
    """Start ``program`` as if it were PgBouncer; return why that failed."""
    monkeypatch.setenv(BINARY_ENV, program)
    with (
        pytest.raises(PgBouncerUnavailable) as caught,
        running_pgbouncer(server_dsn, start_timeout=start_timeout),
    ):
        pytest.fail("it started")
    return str(caught.value)


def test_a_missing_program_is_named(monkeypatch: pytest.MonkeyPatch, server_dsn: str) -> None:
    assert _started_as(monkeypatch, "/nonexistent/pgbouncer", server_dsn) == (
        f"{BINARY_ENV} names /nonexistent/pgbouncer, which is not a program"
    )


def test_a_program_that_exits_at_once_is_reported(
    monkeypatch: pytest.MonkeyPatch, server_dsn: str
) -> None:
    false = shutil.which("false")
    assert false
    assert _started_as(monkeypatch, false, server_dsn) == (
        "pgbouncer exited with 1 at start (and logged nothing)"
    )


def test_a_program_that_never_answers_is_given_up_on(
    monkeypatch: pytest.MonkeyPatch, server_dsn: str
) -> None:
    # yes(1) runs until it is stopped, and never listens: a PgBouncer that hangs.
    yes = shutil.which("yes")
    assert yes
    reason = _started_as(monkeypatch, yes, server_dsn, start_timeout=0.5)
    assert reason == "pgbouncer did not answer in 0.5 s"
