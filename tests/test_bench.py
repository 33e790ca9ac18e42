"""`make bench` runs end to end (on a tiny table: nothing here is timed)."""

from __future__ import annotations

import pytest

from customer_dal import cli


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
        "## Live migration at 400 rows: 0008_accent_folding, 0009_accent_folding_contract",
        "## Server settings",
    ):
        assert heading in out
    for row in (
        "| common 3-letter fragment |",
        "| **pooled** |",
        "| create |",
        "| writes |",
        "| work_mem |",
    ):
        assert row in out
