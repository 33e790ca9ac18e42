"""The ``customer-dal`` command through a real PgBouncer in transaction mode, set up as a
deployment would (``CUSTOMER_DAL_POOLER=transaction``, see tests/pgbouncer.py).

``status``, ``import`` (all or nothing, and ``--skip-invalid``) and ``export`` do the
same work there as against the server, and after each, fresh clients find nothing left
on any of PgBouncer's server connections: no setting, lock, cursor, prepared statement,
temporary object or open transaction. (``migrate`` and ``rollback`` refuse there: see
test_pgbouncer.py.)
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import psycopg
import pytest

from customer_dal.csv_io import CSV_COLUMNS, export_csv
from customer_dal.db import describe

from .pgbouncer import (  # noqa: F401 - the fixture
    CLEAN,
    POOL_SIZE,
    Bouncer,
    pgbouncer_fixture,
    run_customer_dal,
    server_connections,
)
from .shipped import status_lines

HEADER = "name,phone,phone_secondary,email,address,notes\n"
SNAPSHOT = f"SELECT {', '.join(CSV_COLUMNS)} FROM customers ORDER BY id"


def _left_nothing(pgbouncer: Bouncer, *dsns: str) -> None:
    for dsn in dsns:
        assert server_connections(pgbouncer, dsn) == [CLEAN] * POOL_SIZE


def _stderr(done: Any, through: str) -> list[str]:
    """The command's stderr lines after the one naming the database, which comes first."""
    lines: list[str] = done.stderr.splitlines()
    assert lines[:1] == [f"database: {describe(through)}"]
    return lines[1:]


def test_status(pgbouncer: Bouncer, dsn: str, empty_dsn: str) -> None:
    for target, code, state in ((dsn, 0, "applied"), (empty_dsn, 1, "pending")):
        through = pgbouncer.through(target)
        done = run_customer_dal(through, "status")
        assert (done.returncode, done.stdout, _stderr(done, through)) == (
            code,
            status_lines(state),
            [],
        )
    _left_nothing(pgbouncer, dsn, empty_dsn)


@pytest.fixture
def held(dsn: str) -> int:
    """A customer already in the database, whose phone an imported row repeats."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO customers (name, phone) VALUES ('Held', '555-000-0009') RETURNING id"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _names(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM customers ORDER BY id")]


def test_import_with_bad_rows(pgbouncer: Bouncer, dsn: str, held: int, tmp_path: Path) -> None:
    """Both passes of the import run through the pooler: the straight COPY, which meets
    the bad rows and is rolled back, then the checked pass, chunk by chunk."""
    path = tmp_path / "in.csv"
    path.write_text(
        HEADER
        + "Ann,555-000-0001,,,,\n"
        + ",555-000-0002,,,,\n"  # line 3: no name
        + "Bo,555 000 0001,,,,\n"  # line 4: Ann's phone
        + "Cy,(555) 000-0009,,,,\n"  # line 5: the held customer's phone
        + "".join(f"Good {i},555-100-{i:04d},,,,\n" for i in range(20))
    )
    through = pgbouncer.through(dsn)
    refusals = [
        "in.csv, line 3: name is required",
        "in.csv, line 4: phone '555 000 0001' repeats the phone of line 2",
        f"in.csv, line 5: phone '(555) 000-0009' already belongs to active customer {held}",
    ]

    done = run_customer_dal(through, "import", str(path))
    assert (done.returncode, done.stdout, _stderr(done, through)) == (
        1,
        "",
        [*refusals, "customer-dal: error: 3 rows were refused, so nothing was imported"],
    )
    assert _names(dsn) == ["Held"]
    _left_nothing(pgbouncer, dsn)

    done = run_customer_dal(through, "import", str(path), "--skip-invalid")
    rejects = tmp_path / "in.rejects.csv"
    assert (done.returncode, done.stdout, _stderr(done, through)) == (
        0,
        f"imported 21 customers from in.csv\nrefused 3 rows: see {rejects}\n",
        refusals,
    )
    assert _names(dsn) == ["Held", "Ann", *(f"Good {i}" for i in range(20))]
    assert [line.split(",")[0] for line in rejects.read_text().splitlines()] == [
        "line",
        "3",
        "4",
        "5",
    ]
    _left_nothing(pgbouncer, dsn)


def test_import_of_a_clean_file(pgbouncer: Bouncer, dsn: str, tmp_path: Path) -> None:
    """The straight pass alone: one COPY of every row, committed."""
    path = tmp_path / "in.csv"
    path.write_text(HEADER + "".join(f"C {i},555-200-{i:04d},,,,\n" for i in range(3000)))
    through = pgbouncer.through(dsn)
    done = run_customer_dal(through, "import", str(path))
    assert (done.returncode, done.stdout, _stderr(done, through)) == (
        0,
        "imported 3,000 customers from in.csv\n",
        [],
    )
    assert _names(dsn) == [f"C {i}" for i in range(3000)]
    _left_nothing(pgbouncer, dsn)


def test_export(pgbouncer: Bouncer, dsn: str, tmp_path: Path) -> None:
    """More rows than one batch of the export's server-side cursor (1,000), so it
    fetches several times inside its one transaction; the file is byte for byte what
    an export made directly writes, and holds what the table holds."""
    through = pgbouncer.through(dsn)
    done = run_customer_dal(through, "seed", "--count", "2500", "--seed", "3")
    assert (done.returncode, done.stdout) == (0, "seeded 2,500 customers\n")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE customers SET is_active = false WHERE id % 7 = 0")
        conn.execute("UPDATE customers SET notes = E'two\\nlines, \"quoted\"' WHERE id = 5")
        direct = tmp_path / "direct.csv"
        export_csv(conn, direct)
        direct_active = tmp_path / "direct-active.csv"
        export_csv(conn, direct_active, active_only=True)
        stored = conn.execute(SNAPSHOT).fetchall()
    _left_nothing(pgbouncer, dsn)

    for name, options, reference, rows in (
        ("all.csv", [], direct, len(stored)),
        ("active.csv", ["--active-only"], direct_active, sum(row[-1] for row in stored)),
    ):
        out = tmp_path / name
        done = run_customer_dal(through, "export", str(out), *options)
        assert (done.returncode, done.stdout, _stderr(done, through)) == (
            0,
            f"exported {rows:,} customers to {out}\n",
            [],
        )
        assert out.read_bytes() == reference.read_bytes()
        _left_nothing(pgbouncer, dsn)

    with (tmp_path / "all.csv").open(newline="", encoding="utf-8") as file:
        written = list(csv.reader(file))
    assert written[0] == list(CSV_COLUMNS)
    assert written[1:] == [["" if v is None else str(v) for v in row] for row in stored]
    assert sorted(path.name for path in tmp_path.iterdir()) == [  # no partial file left
        "active.csv",
        "all.csv",
        "direct-active.csv",
        "direct.csv",
    ]
