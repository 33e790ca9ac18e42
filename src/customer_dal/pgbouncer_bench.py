"""``make bench``: a pooled ``get`` and ``search`` through PgBouncer in transaction mode,
against the same calls made directly, as ratios (issue 9).

Each side is what an application runs: a :func:`customer_dal.pool` of
:data:`POOL_SIZE` connections, one taken for each call, as a request handler
would (``with pool.connection() as conn: CustomerRepository(conn).get(7)``).

* **direct**: the pool connects to the server; psycopg prepares a statement
  after its fifth run, as it does by default.
* **direct, unprepared**: the same, with ``prepare_threshold=None``: what the
  pooler setting costs before any pooler is in the way.
* **through PgBouncer**: the pool connects to a PgBouncer (``pool_mode =
  transaction``, :data:`POOL_SIZE` server connections, started by
  :mod:`customer_dal.local_pgbouncer`) with ``CUSTOMER_DAL_POOLER=transaction``
  semantics (``pooler="transaction"``: no prepared statements).

The three take turns call by call, so a noisy machine's drift hits them alike;
one client thread, so the figure is the latency a call pays, not throughput.
Without PgBouncer the figure is skipped, in one line that says why.

psycopg_pool hands its connections out in turn, while PgBouncer reuses its most
recent server connection: directly, consecutive calls meet different server
processes; through PgBouncer, one warm process serves them all. That is part
of what is measured, as an application would meet it (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import psycopg

from .bench import Timing
from .customers import CustomerRepository
from .local_pgbouncer import PgBouncerUnavailable, running_pgbouncer
from .pools import Pool, pool
from .queries import load_queries

__all__ = ["POOL_SIZE", "PoolerFigures", "bench_pooler"]

# The application's pool and PgBouncer's pool of server connections alike.
POOL_SIZE = 4
_WARM_UP = 10  # psycopg prepares a statement after 5 runs: the direct side is at its best
SIDES = ("direct", "direct, unprepared", "through PgBouncer")
_SIDE_NOTES = {
    "direct": "psycopg's default: prepared after 5 runs",
    "direct, unprepared": "prepare_threshold=None",
    "through PgBouncer": "CUSTOMER_DAL_POOLER=transaction",
}

Call = Callable[[CustomerRepository, int], object]


@dataclass(frozen=True)
class PoolerFigures:
    """Latencies per call and side, or why there are none (``skipped``)."""

    rows: int
    skipped: str = ""
    version: str = ""
    calls: dict[str, dict[str, Timing]] = field(default_factory=dict)

    def report(self, out: TextIO) -> None:
        heading = "## Through PgBouncer (transaction mode) vs direct"
        if self.skipped:
            print(f"\n{heading}: skipped, {self.skipped}", file=out)
            return
        print(
            f"\n{heading}: pooled calls at {self.rows:,} rows (wall ms per call)\n\n"
            f"{self.version}, pool_mode = transaction, {POOL_SIZE} server connections; "
            f"each side a customer_dal.pool() of {POOL_SIZE}, a connection taken per call, "
            "the sides taking turns. Ratios are to direct.\n",
            file=out,
        )
        print("| call | side | p50 ms | p95 ms | p50 ratio | p95 ratio |", file=out)
        print("| --- | --- | --- | --- | --- | --- |", file=out)
        for call, timings in self.calls.items():
            base = timings["direct"]
            for side, timing in timings.items():
                print(
                    f"| {call} | {side} ({_SIDE_NOTES[side]}) | {timing.p50:.3f} | "
                    f"{timing.p95:.3f} | {timing.p50 / base.p50:.2f} | "
                    f"{timing.p95 / base.p95:.2f} |",
                    file=out,
                )


def bench_pooler(dsn: str, rows: int, calls: int) -> PoolerFigures:
    """Time ``calls`` gets (and a tenth as many searches) on each side, against the
    migrated, filled database ``dsn``."""
    try:
        with running_pgbouncer(dsn, pool_size=POOL_SIZE) as bouncer:
            sizes: dict[str, Any] = {"min_size": POOL_SIZE, "max_size": POOL_SIZE}
            with (
                pool(dsn, pooler="none", name="direct", **sizes) as direct,
                pool(
                    dsn, pooler="none", prepare_threshold=None, name="unprepared", **sizes
                ) as unprepared,
                pool(
                    bouncer.through(dsn), pooler="transaction", name="pgbouncer", **sizes
                ) as pooled,
            ):
                sides = dict(zip(SIDES, (direct, unprepared, pooled), strict=True))
                timings = _measure(sides, *_work(dsn, rows), calls)
    except PgBouncerUnavailable as exc:
        return PoolerFigures(rows, skipped=str(exc))
    return PoolerFigures(rows, version=bouncer.version, calls=timings)


def _work(dsn: str, rows: int) -> tuple[list[int], list[str]]:
    """Customers to get, and searches to run: surnames, first names' starts and phone
    fragments of customers spread over the table."""
    queries = load_queries("bench.sql")
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = [row[0] for row in conn.execute(queries["active_ids"].sql)]
        sample = conn.execute(
            queries["sample_customers"].sql, {"every": max(1, rows // 250), "limit": 30}
        ).fetchall()
    terms = [
        term
        for name, digits, _ in sample
        for term in (name.split()[-1].lower(), name[:3].lower(), digits[-4:])
    ]
    return ids, terms


def _measure(
    sides: dict[str, Pool], ids: list[int], terms: list[str], calls: int
) -> dict[str, dict[str, Timing]]:
    work: dict[str, tuple[Call, int]] = {
        "get": (lambda repo, i: repo.get(ids[i * 7919 % len(ids)]), calls),
        "search": (lambda repo, i: repo.search(terms[i % len(terms)]), max(calls // 10, 5)),
    }
    results: dict[str, dict[str, Timing]] = {}
    for name, (call, count) in work.items():
        samples: dict[str, list[float]] = {side: [] for side in sides}
        for i in range(-_WARM_UP, count):
            # Each side goes first in turn: none always meets the rows cold.
            for side in SIDES[i % 3 :] + SIDES[: i % 3]:
                took = _timed(sides[side], call, i)
                if i >= 0:
                    samples[side].append(took)
        results[name] = {side: Timing(samples[side]) for side in SIDES}
    return results


def _timed(source: Pool, call: Call, i: int) -> float:
    """Wall milliseconds for one call, the pool's check-out and return included."""
    started = time.perf_counter()
    with source.connection() as conn:
        call(CustomerRepository(conn), i)
    return (time.perf_counter() - started) * 1000
