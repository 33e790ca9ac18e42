"""customer-dal import / export / seed / search: the CSV paths and every bad input."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import psycopg
import pytest

from customer_dal import cli
from customer_dal.csv_io import CsvFileError, export_csv, read_customer_rows
from customer_dal.db import describe
from customer_dal.progress import Progress

HEADER = "name,phone,phone_secondary,email,address,notes\n"


def run(capsys: pytest.CaptureFixture[str], dsn: str, *argv: str) -> tuple[int, str, str]:
    """The exit code, stdout, and stderr without the ``database:`` line naming ``dsn``."""
    code = cli.main(["--dsn", dsn, *argv])
    out, err = capsys.readouterr()
    return code, out, err.replace(f"database: {describe(dsn)}\n", "", 1)


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
    assert err.splitlines() == [  # in line order, whichever check refused the row
        "in.csv, line 3: name is required",
        "in.csv, line 4: phone '555 000 0001' repeats the phone of line 2",
        "in.csv, line 5: email 'not-an-email' is not valid: An email address must have an @-sign.",
        "customer-dal: error: 3 rows were refused, so nothing was imported",
    ]
    assert _count(conn) == 0


def test_skip_invalid_writes_good_rows_and_a_rejects_file(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + "Ann,555-000-0001,,,,\nBad,12,,,,\nCleo,5550000001,,,,\n")
    code, out, err = run(capsys, dsn, "import", str(path), "--skip-invalid")
    rejects = tmp_path / "in.rejects.csv"
    assert (code, out) == (
        0,
        f"imported 1 customers from in.csv\nrefused 2 rows: see {rejects}\n",
    )
    assert err.splitlines() == [
        "in.csv, line 3: phone '12' has 2 digits; at least 7 are needed",
        "in.csv, line 4: phone '5550000001' repeats the phone of line 2",
    ]
    assert rejects.read_text().splitlines() == [
        "line,reason,name,phone,phone_secondary,email,address,notes",
        "3,phone '12' has 2 digits; at least 7 are needed,Bad,12,,,,",
        "4,phone '5550000001' repeats the phone of line 2,Cleo,5550000001,,,,",
    ]
    assert _count(conn) == 1


_GOOD_ROWS = HEADER + "".join(f"Good {i},555-100-{i:04d},,,,\n" for i in range(50))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (_GOOD_ROWS.encode() + "Jos\xe9,555-000-0001,,,,\n".encode("latin-1"), "is not UTF-8"),
        (_GOOD_ROWS + 'Ann,"555-000-0001,,,,\n', "line 52: unexpected end of data"),
        (_GOOD_ROWS + "Ann," + "5" * 10_000_000 + ",,,,\n", "line 52: the record runs past"),
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
    assert "in.csv, line 3: name must not contain control character U+0000 (at character 2)" in err
    assert _count(conn) == 0


def test_a_missing_file_is_a_clear_error(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, dsn, "import", str(tmp_path / "nope.csv"))
    assert code == 1
    assert err == (
        f"customer-dal: error: cannot read {tmp_path / 'nope.csv'}: no such file or directory\n"
    )


def test_a_file_problem_is_found_before_the_database_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No database line, no connection attempt: the server here does not even exist."""
    unreachable = "postgresql://x@127.0.0.1:1/x"
    assert run(capsys, unreachable, "import", str(tmp_path)) == (
        1,
        "",
        f"customer-dal: error: cannot read {tmp_path}: it is a directory, not a CSV file\n",
    )


def test_a_pipe_is_refused_because_import_reads_twice(tmp_path: Path) -> None:
    fifo = tmp_path / "in.csv"
    os.mkfifo(fifo)
    with pytest.raises(CsvFileError, match="not a regular file"):
        next(read_customer_rows(fifo))  # and does not block waiting for a writer


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to another user to lose read access")
def test_an_unreadable_file_names_the_path_and_the_reason(tmp_path: Path) -> None:
    import pwd

    path = write(tmp_path, HEADER)
    path.chmod(0o600)
    tmp_path.chmod(0o755)
    os.seteuid(pwd.getpwnam("embedded_postgres").pw_uid)  # root reads anything
    try:
        with pytest.raises(CsvFileError) as caught:
            next(read_customer_rows(path))
    finally:
        os.seteuid(0)
    assert str(caught.value) == f"cannot read {path}: permission denied"


def test_an_unwritable_rejects_file_is_refused_before_importing(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + "Ann,555-000-0001,,,,\n")
    (tmp_path / "in.rejects.csv").mkdir()
    code, _, err = run(capsys, dsn, "import", str(path), "--skip-invalid")
    assert (code, err) == (
        1,
        f"customer-dal: error: cannot write the rejects file {tmp_path / 'in.rejects.csv'}: "
        "it is a directory\n",
    )
    assert _count(conn) == 0


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
    assert lines[0] == "in.csv, line 3: phone '555-000-0001' repeats the phone of line 2"
    assert lines[49] == "in.csv, line 52: phone '555-000-0001' repeats the phone of line 2"
    assert lines[50:] == [  # 50 reasons, then a count: a terminal's worth, not a million lines
        "... and 999,949 more",
        "customer-dal: error: 999,999 rows were refused, so nothing was imported",
    ]
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

    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no partial file left
    active = tmp_path / "active.csv"
    out = run(capsys, dsn, "export", str(active), "--active-only")[1]
    active_count = conn.execute("SELECT count(*) FROM customers WHERE is_active").fetchone()
    assert active_count is not None
    assert out == f"exported {active_count[0]} customers to {active}\n"


def test_export_writes_straight_into_a_device(
    dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, dsn, "seed", "--count", "3")[0] == 0
    assert run(capsys, dsn, "export", "/dev/null") == (
        0,
        "exported 3 customers to /dev/null\n",
        "",
    )


def test_a_full_disk_is_one_clear_error(
    dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, dsn, "seed", "--count", "20000")[0] == 0
    assert run(capsys, dsn, "export", "/dev/full") == (
        1,
        "",
        "customer-dal: error: cannot write /dev/full: no space left on device\n",
    )
    assert conn.execute("SELECT 1").fetchone() == (1,)  # the server is none the worse


@pytest.mark.parametrize(
    ("target", "reason"),
    [(".", "it is a directory; name a file in it"), ("no/such/x.csv", "there is no directory")],
)
def test_export_needs_a_file_in_an_existing_directory(
    tmp_path: Path, conn: psycopg.Connection[Any], target: str, reason: str
) -> None:
    with pytest.raises(CsvFileError, match=f"^cannot write {tmp_path / target}: {reason}"):
        export_csv(conn, tmp_path / target)


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
    assert terminal.getvalue().endswith(" rows/s\n")

    piped = io.StringIO()
    quiet = Progress("importing x.csv", piped)
    quiet(10_000)
    quiet.finish()
    assert piped.getvalue() == ""
