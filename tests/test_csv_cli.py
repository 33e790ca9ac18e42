"""customer-dal import / export / seed / search: the CSV paths and every bad input."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import psycopg
import pytest

from customer_dal import cli
from customer_dal.csv_io import read_customer_rows
from customer_dal.progress import Progress

HEADER = "name,phone,phone_secondary,email,address,notes\n"


def run(capsys: pytest.CaptureFixture[str], dsn: str, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--dsn", dsn, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert row is not None
    return int(row[0])


def write(tmp_path: Path, content: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# --- reading ----------------------------------------------------------------------------


def test_rows_keep_their_starting_line_whatever_the_layout(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "\ufeffPhone, Name ,Shoe size\n"
        '555-000-0001,"Lee, Ann",42\n'
        "\n"
        '555-000-0002,"Multi\nline Bob",43\n'
        "555-000-0003\n",
    )
    assert list(read_customer_rows(path)) == [
        (2, {"phone": "555-000-0001", "name": "Lee, Ann"}),
        (4, {"phone": "555-000-0002", "name": "Multi\nline Bob"}),
        (6, {"phone": "555-000-0003", "name": None}),
    ]


# --- import -----------------------------------------------------------------------------


def test_import_writes_a_clean_file(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        HEADER + "Ann Lee,555-000-0001,,ann@example.com,1 Main St,VIP\nBob,555-000-0002,,,,\n",
    )
    assert run(capsys, dsn, "import", str(path)) == (0, "imported 2 customers from in.csv\n", "")
    stored = conn.execute("SELECT name, email, address, notes FROM customers ORDER BY id")
    assert stored.fetchall() == [
        ("Ann Lee", "ann@example.com", "1 Main St", "VIP"),
        ("Bob", None, None, None),
    ]


def test_import_is_all_or_nothing_and_lists_every_bad_row(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        HEADER
        + "Ann,555-000-0001,,,,\n"
        + ",555-000-0002,,,,\n"
        + "Cleo,555 000 0001,,,,\n"
        + "Dan,555-000-0004,,not-an-email,,\n",
    )
    code, out, err = run(capsys, dsn, "import", str(path))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "in.csv, line 3: name: String should have at least 1 character",
        "in.csv, line 5: email: Value error, An email address must have an @-sign.",
        "in.csv, line 4: phone '555 000 0001' repeats the phone of line 2",
        "customer-dal: error: 3 rows were refused, so nothing was imported",
    ]
    assert _count(conn) == 0


def test_skip_invalid_writes_good_rows_and_a_rejects_file(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + "Ann,555-000-0001,,,,\nBad,12,,,,\nCleo,5550000001,,,,\n")
    code, out, _ = run(capsys, dsn, "import", str(path), "--skip-invalid")
    rejects = tmp_path / "in.rejects.csv"
    assert (code, out) == (
        0,
        f"imported 1 customers from in.csv\nrefused 2 rows: see {rejects}\n",
    )
    assert rejects.read_text().splitlines() == [
        "line,name,phone,phone_secondary,email,address,notes,is_active,reason",
        '3,Bad,12,,,,,,"phone: Value error, a phone number needs at least 7 digits"',
        "4,Cleo,5550000001,,,,,True,phone '5550000001' repeats the phone of line 2",
    ]
    assert _count(conn) == 1


_GOOD_ROWS = HEADER + "".join(f"Good {i},555-100-{i:04d},,,,\n" for i in range(50))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_GOOD_ROWS.encode() + "Jos\xe9,555-000-0001,,,,\n".encode("latin-1"), "is not UTF-8"),
        (_GOOD_ROWS + 'Ann,"555-000-0001,,,,\n', "line 52: unexpected end of data"),
        (_GOOD_ROWS + "Ann," + "5" * 10_000_000 + ",,,,\n", "line 52: field larger than"),
        ("name,email\nAnn,ann@example.com\n", "the header lacks the required column(s) phone"),
        ("", "the header lacks the required column(s) name, phone"),
    ],
    ids=["latin-1", "broken-quote", "10MB-field", "no-phone-column", "empty"],
)
def test_a_broken_file_is_one_clear_error_and_nothing_is_written(
    tmp_path: Path,
    dsn: str,
    conn: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    content: str | bytes,
    message: str,
) -> None:
    code, out, err = run(capsys, dsn, "import", str(write(tmp_path, content)))
    assert (code, out) == (1, "")
    assert err.startswith("customer-dal: error: in.csv")
    assert message in err
    assert err.count("\n") == 1
    assert _count(conn) == 0


def test_a_nul_byte_refuses_its_row(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + "Ann,555-000-0001,,,,\nB\x00b,555-000-0002,,,,\n")
    code, _, err = run(capsys, dsn, "import", str(path))
    assert code == 1
    assert "in.csv, line 3: name: Value error, must not contain NUL characters" in err
    assert _count(conn) == 0


def test_a_missing_file_is_a_clear_error(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, dsn, "import", str(tmp_path / "nope.csv"))
    assert code == 1
    assert err == f"customer-dal: error: {tmp_path / 'nope.csv'}: no such file\n"


@pytest.mark.slow
def test_a_million_rows_with_one_phone_are_refused_whole(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    rows = 1_000_000
    with (tmp_path / "in.csv").open("w") as file:
        file.write("name,phone\n")
        file.writelines(f"Twin {i},555-000-0001\n" for i in range(rows))
    code, _, err = run(capsys, dsn, "import", str(tmp_path / "in.csv"))
    lines = err.splitlines()
    assert code == 1
    assert len(lines) == rows
    assert lines[0] == "in.csv, line 3: phone '555-000-0001' repeats the phone of line 2"
    assert lines[-1] == (
        f"customer-dal: error: {rows - 1} rows were refused, so nothing was imported"
    )
    assert _count(conn) == 0


# --- export -----------------------------------------------------------------------------


def test_export_then_import_reproduces_the_customers(
    tmp_path: Path,
    dsn: str,
    empty_dsn: str,
    conn: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(capsys, dsn, "seed", "--count", "500", "--seed", "4")[:2] == (
        0,
        "seeded 500 customers\n",
    )
    conn.execute("UPDATE customers SET notes = E'line one\\nline \"two\", with comma' WHERE id = 7")
    out_file = tmp_path / "out.csv"
    assert run(capsys, dsn, "export", str(out_file))[1] == f"exported 500 customers to {out_file}\n"
    assert run(capsys, empty_dsn, "migrate")[0] == 0
    assert run(capsys, empty_dsn, "import", str(out_file))[0] == 0

    snapshot = (
        "SELECT name, phone, phone_secondary, email, address, notes, is_active "
        "FROM customers ORDER BY id"
    )
    with psycopg.connect(empty_dsn) as copy:
        assert copy.execute(snapshot).fetchall() == conn.execute(snapshot).fetchall()

    active = tmp_path / "active.csv"
    out = run(capsys, dsn, "export", str(active), "--active-only")[1]
    active_count = conn.execute("SELECT count(*) FROM customers WHERE is_active").fetchone()
    assert active_count is not None
    assert out == f"exported {active_count[0]} customers to {active}\n"


# --- seed, search, progress ---------------------------------------------------------------


@pytest.mark.parametrize("count", ["0", "-3", "many"])
def test_seed_needs_a_positive_count(
    dsn: str, capsys: pytest.CaptureFixture[str], count: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--dsn", dsn, "seed", "--count", count])
    assert caught.value.code == 2
    assert "expected a whole number of at least 1" in capsys.readouterr().err


def test_search_prints_a_table(dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    path_rows = [
        ("Ann Lee", "555-000-0001", "555 777 8888", "ann@example.com"),
        ("Annette", "555-000-0002", "", ""),
    ]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, phone, secondary, email in path_rows:
            conn.execute(
                "INSERT INTO customers (name, phone, phone_secondary, email) "
                "VALUES (%s, %s, nullif(%s, ''), nullif(%s, ''))",
                [name, phone, secondary, email],
            )
    code, out, _ = run(capsys, dsn, "search", "ann", "--limit", "5")
    assert code == 0
    assert out.splitlines() == [
        "id  name     display_phones               email            is_active",
        "1   Ann Lee  555-000-0001 / 555 777 8888  ann@example.com  True",
        "2   Annette  555-000-0002                                  True",
        "(2 customers)",
    ]
    assert run(capsys, dsn, "search", "zzz", "--inactive")[1] == (
        "id  name  display_phones  email  is_active\n(0 customers)\n"
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only() -> None:
    terminal = _Terminal()
    progress = Progress("importing x.csv", terminal)
    progress(10_000)
    progress.finish()
    assert terminal.getvalue().startswith("\rimporting x.csv: 10,000 rows, ")
    assert terminal.getvalue().endswith(" rows/s \n")

    piped = io.StringIO()
    quiet = Progress("importing x.csv", piped)
    quiet(10_000)
    quiet.finish()
    assert piped.getvalue() == ""
