"""``make bench``'s async section: the async API under concurrency, against raw psycopg.

64 asyncio tasks share an async pool of 8 connections; each call takes a
connection, runs one ``get`` or one ``search`` (alternately, searches taken from
the bench's query mix) and gives the connection back. The baseline is raw
psycopg async doing the same on a plain ``psycopg_pool.AsyncConnectionPool``
with the same SQL: the statements the repository sends, in the same
transactions, on raw cursors as the repository's, returning tuples where the
repository returns models. The sync API on 8 threads over a pool of 8 is
printed beside them, for information.

Each figure is the median of a few rounds, taken in turn so that drift in a
shared machine hits every variant alike. Client CPU is this process's CPU time
(``time.process_time``: every thread, the event loop and the pools' workers)
divided by the calls made.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from itertools import chain, zip_longest
from typing import Any, TextIO

import psycopg
from psycopg_pool import AsyncConnectionPool

from .customer_params import search_params
from .customers import CustomerRepository
from .customers_async import AsyncCustomerRepository
from .db import connection_settings
from .models import CustomerSearch
from .pools import pool
from .pools_async import async_pool
from .queries import Query, load_queries

__all__ = ["report_async_bench", "run_async_bench"]

TASKS = 64
POOL_SIZE = 8
THREADS = 8
ROUNDS = 5
SEARCH_LIMIT = 20  # search()'s default page

# One call of the workload: ("get", customer id) or ("search", query).
Call = tuple[str, Any]


def run_async_bench(dsn: str, mix: dict[str, list[str]], calls: int) -> dict[str, Any]:
    """Measure the three variants on ``dsn``'s bench data; return their figures."""
    with psycopg.connect(dsn) as conn:
        ids = [row[0] for row in conn.execute(load_queries("bench.sql")["active_ids"].sql)]
    # Class by class in turn, so that even a short run asks every class.
    searches = [q for q in chain(*zip_longest(*mix.values())) if q is not None]
    step = max(1, len(ids) // max(calls, 1))
    workload: list[Call] = [
        ("get", ids[(i * step) % len(ids)])
        if i % 2 == 0
        else ("search", searches[i % len(searches)])
        for i in range(calls)
    ]
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "raw": [], "sync": []}
    for _ in range(ROUNDS):
        runs["ours"].append(asyncio.run(_measure_async(dsn, workload, raw=False)))
        runs["raw"].append(asyncio.run(_measure_async(dsn, workload, raw=True)))
        runs["sync"].append(_measure_sync(dsn, workload))
    return {
        "calls": calls,
        **{
            name: {
                "calls_per_s": statistics.median(rate for rate, _ in measured),
                "cpu_ms": statistics.median(cpu for _, cpu in measured),
            }
            for name, measured in runs.items()
        },
    }


def _rate_and_cpu(calls: int, wall: float, cpu: float) -> tuple[float, float]:
    return calls / wall, cpu * 1000 / calls


async def _measure_async(dsn: str, workload: list[Call], *, raw: bool) -> tuple[float, float]:
    """Run the workload with TASKS tasks over an async pool of POOL_SIZE connections."""
    opened = await (_raw_pool(dsn) if raw else async_pool(dsn, min_size=POOL_SIZE))
    call = _raw_call if raw else _our_call
    async with opened:
        for item in workload[: POOL_SIZE * 2]:  # warm up: psycopg prepares after 5 runs
            await call(opened, item)
        queue = iter(workload)

        async def task() -> None:
            for item in queue:  # the tasks share one iterator: each call is made once
                await call(opened, item)

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(task() for _ in range(TASKS)))
        return _rate_and_cpu(
            len(workload), time.perf_counter() - started, time.process_time() - cpu
        )


async def _our_call(opened: AsyncConnectionPool[Any], item: Call) -> None:
    async with opened.connection() as conn:
        customers = AsyncCustomerRepository(conn)
        name, argument = item
        if name == "get":
            await customers.get(argument)
        else:
            await customers.search(argument)


async def _raw_pool(dsn: str) -> AsyncConnectionPool[Any]:
    conninfo, keywords = connection_settings(dsn, None, {})
    opened: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo, kwargs=keywords, min_size=POOL_SIZE, open=False
    )
    await opened.open(wait=True)
    return opened


async def _raw_call(opened: AsyncConnectionPool[Any], item: Call) -> None:
    """What the repository sends for the call, written by hand, returning tuples."""
    sql = load_queries("customers.sql")
    name, argument = item
    async with opened.connection() as conn:
        if name == "get":
            await _rows(conn, sql["get"], {"id": argument, "include_inactive": False})
            return
        params = search_params(
            CustomerSearch(query=argument, include_inactive=False, limit=SEARCH_LIMIT, offset=0)
        )
        async with conn.pipeline():
            await _rows(conn, sql["search_settings"], None)
            await _rows(conn, sql["search"], params)


async def _rows(conn: psycopg.AsyncConnection[Any], query: Query, params: Any) -> list[Any]:
    # As the repository does: PostgreSQL's placeholders on a raw cursor, so that
    # psycopg does not parse the text again at each call (see queries.py).
    cursor = psycopg.AsyncRawCursor(conn)
    await cursor.execute(query.native_sql, query.values(params))
    return await cursor.fetchall()


def _measure_sync(dsn: str, workload: list[Call]) -> tuple[float, float]:
    """Run the workload on THREADS threads over a (sync) pool of POOL_SIZE connections."""
    queue = iter(workload)
    lock = threading.Lock()  # a shared iterator is not thread-safe

    def next_call() -> Call | None:
        with lock:
            return next(queue, None)

    with pool(dsn, min_size=POOL_SIZE) as opened:

        def call(item: Call) -> None:
            with opened.connection() as conn:
                customers = CustomerRepository(conn)
                name, argument = item
                if name == "get":
                    customers.get(argument)
                else:
                    customers.search(argument)

        for item in workload[: POOL_SIZE * 2]:
            call(item)

        def worker() -> None:
            while (item := next_call()) is not None:
                call(item)

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        started, cpu = time.perf_counter(), time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return _rate_and_cpu(
            len(workload), time.perf_counter() - started, time.process_time() - cpu
        )


def report_async_bench(figures: dict[str, Any], out: TextIO) -> None:
    """Print the section, each figure with its ratio to raw psycopg async."""

    def line(*cells: object) -> None:
        print("| " + " | ".join(str(cell) for cell in cells) + " |", file=out)

    raw = figures["raw"]
    print(
        f"\n## Async API: {TASKS} tasks over an async pool of {POOL_SIZE}, get and search "
        f"({figures['calls']:,} calls, median of {ROUNDS} rounds)\n",
        file=out,
    )
    line("variant", "calls/s", "throughput vs raw", "client CPU ms/call", "CPU vs raw")
    line(*["---"] * 5)
    for label, name in (
        ("async API", "ours"),
        ("raw psycopg async", "raw"),
        (f"sync API, {THREADS} threads, pool of {POOL_SIZE} (information)", "sync"),
    ):
        measured = figures[name]
        line(
            label,
            f"{measured['calls_per_s']:,.0f}",
            f"{measured['calls_per_s'] / raw['calls_per_s']:.2f}x",
            f"{measured['cpu_ms']:.3f}",
            f"{measured['cpu_ms'] / raw['cpu_ms']:.2f}x",
        )
