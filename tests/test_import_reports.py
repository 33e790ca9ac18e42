"""customer-dal import, as a person reads it: reasons in plain words and line order, a
terminal that stays legible, a rejects file that keeps each refused row as it was,
and memory that stays bounded whatever the file holds."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel, ValidationError, field_validator

from customer_dal import cli
from customer_dal.bulk import ImportRejectedError, Rejection, bulk_import, explain_validation_error
from customer_dal.csv_io import MAX_RECORD_CHARS, CsvFileError, RejectsFile, read_customer_rows
from customer_dal.db import describe
from customer_dal.models import MAX_ADDRESS_LENGTH, MAX_NOTES_LENGTH, CustomerSearch

from .conftest import fresh_database

HEADER = "name,phone\n"


def run(capsys: pytest.CaptureFixture[str], dsn: str, *argv: str) -> tuple[int, str, str]:
    """The exit code, stdout, and stderr without the ``database:`` line naming ``dsn``."""
    code = cli.main(["--dsn", dsn, *argv])
    out, err = capsys.readouterr()
    return code, out, err.replace(f"database: {describe(dsn)}\n", "", 1)


def write(tmp_path: Path, content: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode())
    return path


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def read_csv(path: Path, delimiter: str = ",") -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file, delimiter=delimiter))


def numbered_customers(rows: int) -> list[str]:
    """``rows`` distinct customers, as CSV lines: line n + 2 holds customer n."""
    return [f"Customer {i},555-{i // 10_000:03d}-{i % 10_000:04d}" for i in range(rows)]


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert row is not None
    return int(row[0])


# --- reasons --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_conn(server_dsn: str, template_dbname: str) -> Iterator[psycopg.Connection[Any]]:
    """One migrated database for tests that write nothing (refused batches)."""
    for dsn in fresh_database(server_dsn, template_dbname):
        with psycopg.connect(dsn, autocommit=True) as conn:
            yield conn


ANN = {"name": "Ann Lee", "phone": "555 000 0001"}


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({**ANN, "name": ""}, "name is required"),
        ({**ANN, "name": "   "}, "name is required"),
        ({**ANN, "phone": ""}, "phone is required"),
        ({"name": "Ann"}, "phone is required"),
        ({**ANN, "phone": None}, "phone is required"),  # a short CSV row
        ({**ANN, "phone": "12-34"}, "phone '12-34' has 4 digits; at least 7 are needed"),
        ({**ANN, "phone": "5"}, "phone '5' has 1 digit; at least 7 are needed"),
        (
            {**ANN, "phone_secondary": "ext. 12"},
            "phone_secondary 'ext. 12' has 2 digits; at least 7 are needed",
        ),
        (
            {**ANN, "name": "Ann\x1b[2J"},
            "name must not contain control character U+001B (at character 4)",
        ),
        (
            {**ANN, "email": "x@"},
            "email 'x@' is not valid: There must be something after the @-sign.",
        ),
        ({**ANN, "name": "A" * 101}, "name is longer than 100 characters"),
        (
            {**ANN, "address": "a" * (MAX_ADDRESS_LENGTH + 1)},
            "address is longer than 1,000 characters",
        ),
        ({**ANN, "notes": "n" * (MAX_NOTES_LENGTH + 1)}, "notes is longer than 100,000 characters"),
        ({**ANN, "name": 42}, "name: Input should be a valid string"),
        ({**ANN, "is_active": "maybe"}, "is_active must be true or false, not 'maybe'"),
        (
            {"name": "", "phone": "1", "is_active": "maybe"},
            "name is required; phone '1' has 1 digit; at least 7 are needed; "
            "is_active must be true or false, not 'maybe'",
        ),
    ],
)
def test_reasons_read_like_a_person_wrote_them(
    shared_conn: psycopg.Connection[Any], values: dict[str, Any], reason: str
) -> None:
    heard: list[Rejection] = []
    with pytest.raises(ImportRejectedError, match=r"^1 row was refused"):
        bulk_import(shared_conn, lambda: [(2, values)], on_reject=heard.append)
    assert [(r.line, r.reason) for r in heard] == [(2, reason)]


class _Paint(BaseModel):
    colour: str

    @field_validator("colour")
    @classmethod
    def _primary(cls, colour: str) -> str:
        raise ValueError("must be a primary colour")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: _Paint(colour="mauve"), "colour must be a primary colour"),
        (lambda: CustomerSearch(query="ann", limit=0), "limit must be at least 1"),
        (lambda: CustomerSearch(query="ann", limit=101), "limit must be at most 100"),
    ],
)
def test_any_validation_error_is_named_by_field_without_pydantic_s_prefixes(
    make: Any, reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make()
    assert explain_validation_error(caught.value) == reason


# --- at most 50 on the terminal, all in the rejects file --------------------------------------


def test_reimporting_20000_conflicting_rows_prints_50_reasons_and_a_count(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + "\n".join(numbered_customers(20_000)) + "\n")
    assert run(capsys, dsn, "import", str(path))[:2] == (
        0,
        "imported 20,000 customers from in.csv\n",
    )

    code, out, err = run(capsys, dsn, "import", str(path))
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0] == "in.csv, line 2: phone '555-000-0000' already belongs to active customer 1"
    assert (
        lines[49] == "in.csv, line 51: phone '555-000-0049' already belongs to active customer 50"
    )
    assert lines[50:] == [
        "... and 19,950 more",
        "customer-dal: error: 20,000 rows were refused, so nothing was imported",
    ]

    code, out, err = run(capsys, dsn, "import", str(path), "--skip-invalid")
    rejects = tmp_path / "in.rejects.csv"
    assert (code, out) == (
        0,
        f"imported 0 customers from in.csv\nrefused 20,000 rows: see {rejects}\n",
    )
    assert err.splitlines()[50:] == [f"... and 19,950 more: see {rejects}"]
    refused = read_csv(rejects)
    assert len(refused) == 1 + 20_000
    assert refused[-1] == [
        "20001",
        "phone '555-001-9999' already belongs to active customer 20000",
        "Customer 19999",
        "555-001-9999",
    ]
    assert _count(dsn) == 20_000


def test_the_rejects_file_keeps_each_refused_row_exactly_as_read(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        " Name ;PHONE;Shoe size;notes\r\n"
        "  Ann Lee  ;555-000-0001;42;fine\r\n"
        'Mu\u0308ller;555 000 0001;43;"repeats Ann\'s phone;\r\nacross lines"\r\n'
        "Short;12\r\n"
        "Long;555-000-0003;44;ok;extra;more\r\n"
        ';555-000-0004;45;"no name"\r\n',
    )
    code, out, err = run(capsys, dsn, "import", str(path), "--delimiter", ";", "--skip-invalid")
    rejects = tmp_path / "in.rejects.csv"
    assert (code, out) == (0, f"imported 2 customers from in.csv\nrefused 3 rows: see {rejects}\n")
    assert err.splitlines() == [
        "in.csv, line 3: phone '555 000 0001' repeats the phone of line 2",
        "in.csv, line 5: phone '12' has 2 digits; at least 7 are needed",
        "in.csv, line 7: name is required",
    ]
    # Raw: untrimmed, not normalised (NFD), CRLF inside a field, ragged rows, unknown columns.
    assert read_csv(rejects, ";") == [
        ["line", "reason", " Name ", "PHONE", "Shoe size", "notes"],
        [
            "3",
            "phone '555 000 0001' repeats the phone of line 2",
            "Mu\u0308ller",
            "555 000 0001",
            "43",
            "repeats Ann's phone;\r\nacross lines",
        ],
        ["5", "phone '12' has 2 digits; at least 7 are needed", "Short", "12"],
        ["7", "name is required", "", "555-000-0004", "45", "no name"],
    ]

    # Imported again as it is, the rejects file is refused for the same reasons:
    # line and reason are columns import ignores.
    code, _, err = run(capsys, dsn, "import", str(rejects), "--delimiter", ";", "--skip-invalid")
    assert code == 0
    assert err.splitlines() == [
        "in.rejects.csv, line 2: phone '555 000 0001' already belongs to active customer 1",
        "in.rejects.csv, line 4: phone '12' has 2 digits; at least 7 are needed",
        "in.rejects.csv, line 5: name is required",
    ]


@pytest.mark.parametrize(
    "content",
    [None, b"name,phone\nJos\xe9,555-000-0001\n", b""],
    ids=["missing", "latin-1", "empty"],
)
def test_no_rejects_file_when_the_input_cannot_be_read(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_bytes(content)
    assert run(capsys, dsn, "import", str(path), "--skip-invalid")[0] == 1
    assert listing(tmp_path) == ([] if content is None else ["in.csv"])


def test_a_failed_import_leaves_an_earlier_rejects_file_as_it_was(
    tmp_path: Path, empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + "Bad,12\n")
    earlier = tmp_path / "in.rejects.csv"
    earlier.write_bytes(b"line,reason,name,phone\r\n9,yesterday's,Old,1\r\n")
    code, _, err = run(capsys, empty_dsn, "import", str(path), "--skip-invalid")
    assert code == 1
    assert "is not migrated" in err
    assert earlier.read_bytes() == b"line,reason,name,phone\r\n9,yesterday's,Old,1\r\n"
    assert listing(tmp_path) == ["in.csv", "in.rejects.csv"]  # and no partial file


def test_a_clean_import_with_skip_invalid_leaves_an_empty_rejects_file(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, HEADER + "Ann,555-000-0001\n")
    (tmp_path / "in.rejects.csv").write_text("line,reason,name,phone\r\n2,stale,Ann,1\r\n")
    assert run(capsys, dsn, "import", str(path), "--skip-invalid")[:2] == (
        0,
        "imported 1 customers from in.csv\n",
    )
    assert read_csv(tmp_path / "in.rejects.csv") == [["line", "reason", "name", "phone"]]


@pytest.mark.parametrize(
    ("line", "why"), [(3, "inside the record of line 2"), (99, "past the end")]
)
def test_the_rejects_file_refuses_a_line_no_record_starts_at(
    tmp_path: Path, line: int, why: str
) -> None:
    """What a file edited during its import would lead to: the file is discarded."""
    source = write(tmp_path, 'name,phone\nAnn,"555\n000 0001"\nBob,12\n')
    rejects = RejectsFile(tmp_path / "in.rejects.csv", source)
    with pytest.raises(CsvFileError) as caught, rejects:
        rejects.write(line, why)
    assert str(caught.value) == (
        f"in.csv changed while it was imported: no record starts at line {line}"
    )
    assert listing(tmp_path) == ["in.csv"]


# --- the terminal ---------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def screen(transcript: str) -> list[str]:
    """What a terminal shows after ``transcript``: ``\\r`` returns to the start of the
    line, ``\\n`` starts a new one, anything else overwrites what the line held."""
    lines, column = [""], 0
    for char in transcript:
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append("")
            column = 0
        else:
            line = lines[-1].ljust(column)
            lines[-1] = line[:column] + char + line[column + 1 :]
            column += 1
    return [line.rstrip() for line in lines]


def _twenty_thousand_with_three_bad(tmp_path: Path) -> Path:
    rows = numbered_customers(20_011)
    rows[15_000] = "Bad phone,12-34"  # line 15,002: the straight pass stops here
    rows[17_000] = "Twin,555-000-0001"  # line 17,002 repeats line 3
    rows[19_000] = ",555-999-9999"  # line 19,002
    return write(tmp_path, HEADER + "\n".join(rows) + "\n")


REASONS = [
    "in.csv, line 15002: phone '12-34' has 4 digits; at least 7 are needed",
    "in.csv, line 17002: phone '555-000-0001' repeats the phone of line 3",
    "in.csv, line 19002: name is required",
]


def test_on_a_terminal_each_reason_starts_on_a_clean_line(
    tmp_path: Path,
    dsn: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = _twenty_thousand_with_three_bad(tmp_path)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert cli.main(["--dsn", dsn, "import", str(path), "--skip-invalid"]) == 0
    transcript = terminal.getvalue()

    # What each phase said while it lasted (each overwritten by the next)...
    assert "\rimporting in.csv: 10,000 rows, " in transcript
    assert "\rimporting in.csv, checking each row: 20,000 rows, " in transcript
    assert "\rimporting in.csv, checking 20,011 rows for conflicts" in transcript
    # ...and what stays on the screen: no reason glued onto a progress line.
    assert screen(transcript) == [
        f"database: {describe(dsn)}",
        *REASONS,
        "importing in.csv, writing 20,008 rows",
        "",
    ]
    rejects = tmp_path / "in.rejects.csv"
    assert capsys.readouterr().out == (
        f"imported 20,008 customers from in.csv\nrefused 3 rows: see {rejects}\n"
    )


@pytest.mark.slow
def test_a_real_terminal_shows_each_reason_on_a_line_of_its_own(tmp_path: Path, dsn: str) -> None:
    path = _twenty_thousand_with_three_bad(tmp_path)
    controller, terminal = os.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "customer_dal", "--dsn", dsn, "import", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
    ) as process:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process is gone and its end of the terminal with it
                break
            chunks.append(chunk)
        assert process.wait(timeout=120) == 1
    os.close(controller)
    shown = screen(b"".join(chunks).decode())
    assert shown[1:] == [
        *REASONS,
        "customer-dal: error: 3 rows were refused, so nothing was imported",
        "",
    ]


# --- what a file may hold -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "content", "name"),
    [
        (";", "name;phone;notes\nLee, Ann;555-000-0001;a,b\n", "Lee, Ann"),
        ("tab", "name\tphone\tnotes\nLee; Ann\t555-000-0001\ta,b;c\n", "Lee; Ann"),
        ("\\t", "name\tphone\tnotes\nLee; Ann\t555-000-0001\ta,b;c\n", "Lee; Ann"),
    ],
)
def test_import_reads_the_delimiter_it_is_given(
    tmp_path: Path,
    dsn: str,
    conn: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    option: str,
    content: str,
    name: str,
) -> None:
    path = write(tmp_path, content)
    assert run(capsys, dsn, "import", str(path), "--delimiter", option)[0] == 0
    assert conn.execute("SELECT name, phone FROM customers").fetchall() == [(name, "555-000-0001")]


@pytest.mark.parametrize(
    ("content", "delimiter", "said"),
    [
        ("name\tphone\n", ",", "it reads 'name\\tphone'; if the columns are separated by tab, "),
        ("name,phone\n", ";", "it reads 'name,phone'; if the columns are separated by ',', "),
        ("Name,Telephone\n", ",", "it reads 'Name,Telephone'"),
        ("x" * 200 + "\n", ",", f"it reads '{'x' * 120}...'"),
        ("\n", ",", "it reads ''"),
        ("", ",", "the file is empty"),
    ],
    ids=["tabs", "commas", "other-names", "long", "blank-first-line", "empty"],
)
def test_a_header_without_name_and_phone_shows_what_it_found(
    tmp_path: Path, content: str, delimiter: str, said: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(CsvFileError) as caught:
        next(read_customer_rows(path, delimiter))
    message = str(caught.value)
    assert message.startswith("in.csv: the header lacks the required column(s) ")
    assert said in message
    assert ("use --delimiter" in message) == said.endswith(", ")


def test_the_record_bound_leaves_room_for_the_longest_customer() -> None:
    longest = 100 + 20 + 20 + 100 + MAX_ADDRESS_LENGTH + MAX_NOTES_LENGTH + len("False")
    assert 2 * (longest + 7 * 3) < MAX_RECORD_CHARS  # every character a doubled quote


def test_a_field_past_csv_s_default_limit_refuses_only_its_row(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """csv's own limit (128 KiB) would fail the whole file; the models refuse the row."""
    default = csv.field_size_limit()
    path = write(tmp_path, "name,phone,notes\nAnn,555-000-0001,\nBob,555-000-0002," + "n" * 150_000)
    code, out, err = run(capsys, dsn, "import", str(path), "--skip-invalid")
    assert (code, err) == (0, "in.csv, line 3: notes is longer than 100,000 characters\n")
    assert out.startswith("imported 1 customers from in.csv\n")
    assert csv.field_size_limit() == default  # raised only while a record was parsed


def test_an_unclosed_quote_is_named_at_its_line_without_reading_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + 'Ann,"555-000-0001\n' + "Bob,555-000-0002\n" * 150_000)
    with pytest.raises(CsvFileError) as caught:
        list(read_customer_rows(path))
    assert str(caught.value) == (
        "in.csv, line 2: the record runs past 2,000,000 characters, far more than a customer "
        "can hold (notes up to 100,000); is a quote left open?"
    )


_MEASURED = """
import json, resource, subprocess, sys
result = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=False)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": result.returncode, "stderr": result.stderr, "peak_kib": peak}))
"""


@pytest.mark.slow
def test_a_200_mb_line_is_refused_in_bounded_memory(tmp_path: Path, dsn: str) -> None:
    path = tmp_path / "in.csv"
    with path.open("w") as file:
        file.write(HEADER + "Ann,555-000-0001\n")
        for _ in range(200):
            file.write("a," * 500_000)  # one line of 200 MB of short fields
        file.write("\nBob,555-000-0002\n")
    import_it = [sys.executable, "-m", "customer_dal", "--dsn", dsn, "import", str(path)]
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURED, *import_it],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    report = json.loads(measured.stdout)
    assert report["code"] == 1
    assert (
        report["stderr"]
        .splitlines()[-1]
        .startswith(
            "customer-dal: error: in.csv, line 3: the record runs past 2,000,000 characters"
        )
    )
    assert report["peak_kib"] < 300 * 1024, f"peak RSS {report['peak_kib'] // 1024} MB"
    assert _count(dsn) == 0


# --- what the CLI prints cannot take over the terminal -----------------------------------------


def test_printable_escapes_what_moves_the_cursor_and_keeps_the_rest() -> None:
    assert cli.printable("a\x1b[2Jb\n\t\r\x00\x85\x7f\u2028\u202e\u2066z") == (
        "a\\x1b[2Jb\\n\\t\\r\\x00\\x85\\x7f\\u2028\\u202e\\u2066z"
    )
    assert cli.printable("Zoë Ølsen 漢字 🙂 \\n") == "Zoë Ølsen 漢字 🙂 \\n"


def test_search_shows_stored_control_characters_escaped(
    dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # A DBA who dropped the rules (they cannot be bypassed otherwise), then wrote by hand.
    conn.execute(
        "ALTER TABLE customers DROP CONSTRAINT customers_name_clean, "
        "DROP CONSTRAINT customers_phone_clean"
    )
    conn.execute(
        "INSERT INTO customers (name, phone) VALUES (%s, %s), (%s, %s), (%s, %s)",
        [
            "Evil\x1b[2J\x1b[HCorp",
            "555-000-0001",
            "Evil two\nlines",
            "555\t000 0002",
            "Evil \u202eright to left",
            "555-000-0003",
        ],
    )
    code, out, _ = run(capsys, dsn, "search", "evil")
    assert code == 0
    assert out.splitlines() == [
        "id  name                      display_phones  email  is_active",
        "1   Evil\\x1b[2J\\x1b[HCorp     555-000-0001           True",
        "2   Evil two\\nlines           555\\t000 0002          True",
        "3   Evil \\u202eright to left  555-000-0003           True",
        "(3 customers)",
    ]


def test_an_error_naming_a_file_shows_its_control_characters_escaped(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "\x1b[2Jevil.csv"
    assert run(capsys, dsn, "import", str(missing)) == (
        1,
        "",
        f"customer-dal: error: cannot read {tmp_path}/\\x1b[2Jevil.csv: "
        "no such file or directory\n",
    )
