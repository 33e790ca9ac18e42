"""`make bench` runs end to end (on a tiny table: nothing here is timed)."""

from __future__ import annotations

import io

import pytest

from customer_dal import bench, cli, connect
from customer_dal.bulk import bulk_import
from customer_dal.local_pgbouncer import BINARY_ENV
from customer_dal.pgbouncer_bench import SIDES, bench_pooler
from customer_dal.seed import fake_customers

from .pgbouncer import require_pgbouncer

POOLER_HEADING = "## Through PgBouncer (transaction mode) vs direct"
_SIDE_LABELS = [
    "direct (psycopg's default: prepared after 5 runs)",
    "direct, unprepared (prepare_threshold=None)",
    "through PgBouncer (CUSTOMER_DAL_POOLER=transaction)",
]


@pytest.mark.slow
def test_bench_prints_every_figure_against_its_baseline(
    server_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        ["--dsn", server_dsn, "bench", "--rows", "400", "--calls", "20", "--repeats", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    for heading in (
        "## Search at 400 rows",
        "## Growth: pooled p50 at 400 vs 40 rows",
        "## Repository calls",
        "## Import of a 400-row CSV vs raw COPY",
        "## Live migration at 400 rows: 0008_accent_folding, 0009_accent_folding_contract, "
        "0010_ordered_search",
        "## Server settings",
        POOLER_HEADING,  # its figures, or the line saying why they were skipped
        "## Async API: 64 tasks over an async pool of 8",
    ):
        assert heading in out
    for row in (
        "| common 3-letter fragment |",
        "| **pooled** |",
        "| create |",
        "| writes |",
        "| work_mem |",
        "| raw psycopg async |",
    ):
        assert row in out


def test_the_story_search_runs_beside_ours_as_often_where_it_is_fast(dsn: str) -> None:
    """Its p95 then comes from as many samples as ours; a slow one runs once per query,
    and that run stands for every round, so that each query weighs the same."""
    with connect(dsn) as conn:
        bulk_import(conn, lambda: fake_customers(50, seed=1))
        bench._prepare_baselines(conn)
        mix = {"some class": ["son", "zz-no-match"]}
        fast = bench._bench_search(conn, mix, repeats=3)["some class"]
        slow = bench._bench_search(conn, mix, repeats=3, story_fast_ms=0)["some class"]
    assert [len(timings[side].samples) for timings in (fast, slow) for side in timings] == [6] * 4
    assert slow["story"].samples == slow["story"].samples[:2] * 3  # two runs, three rounds
    assert fast["story"].samples != fast["story"].samples[:2] * 3


def test_the_figure_through_pgbouncer(dsn: str) -> None:
    require_pgbouncer()
    with connect(dsn) as conn:
        bulk_import(conn, lambda: fake_customers(400, seed=1))
    out = io.StringIO()
    figures = bench_pooler(dsn, rows=400, calls=20)
    figures.report(out)
    assert {call: list(timings) for call, timings in figures.calls.items()} == {
        "get": list(SIDES),
        "search": list(SIDES),
    }
    assert [len(timings["direct"].samples) for timings in figures.calls.values()] == [20, 5]
    lines = out.getvalue().splitlines()
    assert lines[1] == f"{POOLER_HEADING}: pooled calls at 400 rows (wall ms per call)"
    assert lines[3].startswith(f"{figures.version}, pool_mode = transaction, 4 server")
    assert [line.split(" | ")[:2] for line in lines[5:]] == [
        ["| call", "side"],
        ["| ---", "---"],
        *([f"| {call}", side] for call in ("get", "search") for side in _SIDE_LABELS),
    ]


def test_without_pgbouncer_the_figure_is_skipped_in_one_line(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BINARY_ENV, "/nonexistent/pgbouncer")
    out = io.StringIO()
    bench_pooler(dsn, rows=400, calls=20).report(out)
    assert out.getvalue() == (
        f"\n{POOLER_HEADING}: skipped, "
        f"{BINARY_ENV} names /nonexistent/pgbouncer, which is not a program\n"
    )
