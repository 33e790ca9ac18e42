"""customer-dal export: the old file survives every failure, formula cells can be
defused, and export then import is an exact round trip at the models' limits."""

from __future__ import annotations

import csv
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from customer_dal import CustomerRepository, cli
from customer_dal.csv_io import CSV_COLUMNS, CsvFileError, RejectsFile, export_csv
from customer_dal.db import describe
from customer_dal.models import MAX_ADDRESS_LENGTH, MAX_NOTES_LENGTH

from .conftest import fresh_database
from .test_bulk import interrupt_main_thread, terminate, when_backend

# What a user would be sorry to lose: not even valid UTF-8, so nothing could rebuild it.
YESTERDAY = b"name,phone\r\nAnn,555-000-0001\r\n" + bytes(range(256)) * 64
FETCHING = "a.query LIKE 'FETCH%'"  # the export's server-side cursor is handing out rows
SNAPSHOT = (
    "SELECT name, phone, phone_secondary, email, address, notes, is_active "
    "FROM customers ORDER BY id"
)


def run(capsys: pytest.CaptureFixture[str], dsn: str, *argv: str) -> tuple[int, str, str]:
    """The exit code, stdout, and stderr without the ``database:`` line naming ``dsn``."""
    code = cli.main(["--dsn", dsn, *argv])
    out, err = capsys.readouterr()
    return code, out, err.replace(f"database: {describe(dsn)}\n", "", 1)


def old_file(tmp_path: Path, name: str = "out.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(YESTERDAY)
    return path


def listing(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.fixture(scope="module")
def big_dsn(server_dsn: str, template_dbname: str) -> Iterator[str]:
    """100,000 customers with 1,000-character notes: a 100 MB export, seconds long."""
    for dsn in fresh_database(server_dsn, template_dbname):
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO customers (name, phone, notes) "
                "SELECT 'Customer ' || i, '555' || lpad(i::text, 7, '0'), repeat('n', 1000) "
                "FROM generate_series(1, 100000) AS i"
            )
        yield dsn


# --- the old file survives ------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_mid_export_leaves_the_old_file_and_the_next_export_sweeps_up(
    tmp_path: Path, big_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = old_file(tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "customer_dal", "--dsn", big_dsn, "export", str(target)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        partial = tmp_path / f".out.csv.partial-{process.pid}"
        deadline = time.monotonic() + 60
        while not (partial.exists() and partial.stat().st_size > 1_000_000):
            assert process.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        process.send_signal(signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    assert target.read_bytes() == YESTERDAY
    assert partial.exists()  # what a SIGKILL leaves: no code of ours ran

    # The next export to the same file removes it: its writer is dead.
    assert run(capsys, big_dsn, "export", str(target))[:2] == (
        0,
        f"exported 100,000 customers to {target}\n",
    )
    assert listing(tmp_path) == ["out.csv"]


@pytest.mark.slow
def test_a_backend_terminated_mid_export_leaves_the_old_file(
    tmp_path: Path, big_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = old_file(tmp_path)
    watcher = when_backend(big_dsn, FETCHING, terminate)
    code, out, err = run(capsys, big_dsn, "export", str(target))
    watcher.join()
    assert (code, out) == (1, "")
    assert err.startswith("customer-dal: error: lost the connection to ")
    assert target.read_bytes() == YESTERDAY
    assert listing(tmp_path) == ["out.csv"]


@pytest.mark.slow
def test_ctrl_c_mid_export_leaves_the_old_file(
    tmp_path: Path, big_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = old_file(tmp_path)
    watcher = when_backend(big_dsn, FETCHING, interrupt_main_thread)
    code, out, err = run(capsys, big_dsn, "export", str(target))
    watcher.join()
    assert (code, out, err) == (
        130,
        "",
        "customer-dal: interrupted, nothing was exported: an earlier file is left as it was\n",
    )
    assert target.read_bytes() == YESTERDAY
    assert listing(tmp_path) == ["out.csv"]


def test_a_locked_table_times_out_and_leaves_the_old_file(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = old_file(tmp_path)
    impatient = make_conninfo(dsn, options="-c lock_timeout=200ms")
    with psycopg.connect(dsn) as dba:
        dba.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")  # e.g. a long migration
        code, out, err = run(capsys, impatient, "export", str(target))
    assert (code, out) == (1, "")
    assert "lock_timeout" in err
    assert target.read_bytes() == YESTERDAY
    assert listing(tmp_path) == ["out.csv"]


def test_an_unmigrated_database_leaves_the_old_file(
    tmp_path: Path, empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = old_file(tmp_path)
    code, _, err = run(capsys, empty_dsn, "export", str(target))
    assert code == 1
    assert "is not migrated: run make migrate" in err
    assert target.read_bytes() == YESTERDAY
    assert listing(tmp_path) == ["out.csv"]


@pytest.fixture
def file_size_limit() -> Iterator[Any]:
    """Set a real RLIMIT_FSIZE on this process: writes past it fail with EFBIG, as on a
    full disk (SIGXFSZ, which would kill us instead, is ignored meanwhile)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def limit(size: int) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.mark.parametrize(
    ("customers", "limit"), [(3000, 65_536), (3, 100)], ids=["while-writing", "at-the-last-flush"]
)
def test_a_write_that_fails_leaves_the_old_file(
    tmp_path: Path,
    conn: psycopg.Connection[Any],
    file_size_limit: Any,
    customers: int,
    limit: int,
) -> None:
    conn.execute(
        "INSERT INTO customers (name, phone) "
        "SELECT 'Customer ' || i, '555' || lpad(i::text, 7, '0') FROM generate_series(1, %s) AS i",
        [customers],
    )
    target = old_file(tmp_path)
    file_size_limit(limit)
    with pytest.raises(CsvFileError) as caught:
        export_csv(conn, target)
    file_size_limit(resource.RLIM_INFINITY)
    assert str(caught.value) == f"cannot write {target}: file too large"
    assert target.read_bytes() == YESTERDAY
    assert listing(tmp_path) == ["out.csv"]


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_gets_the_umask(
    tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    private = old_file(tmp_path, "private.csv")
    private.chmod(0o600)  # customers' phone numbers: not for every user of the machine
    export_csv(conn, private)
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.read_bytes() != YESTERDAY

    umask = os.umask(0o022)
    os.umask(umask)
    export_csv(conn, tmp_path / "new.csv")
    assert (tmp_path / "new.csv").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_symlink_is_followed_and_kept(tmp_path: Path, conn: psycopg.Connection[Any]) -> None:
    (tmp_path / "exports").mkdir()
    real = old_file(tmp_path / "exports", "2026-11.csv")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    export_csv(conn, link)
    assert link.is_symlink()
    assert real.read_text().startswith("name,phone,")
    assert listing(tmp_path / "exports") == ["2026-11.csv"]


def test_stale_partials_of_dead_writers_go_and_others_stay(
    tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    dead = _a_dead_pid()
    kept = [
        ".out.csv.partial-1",  # init's: alive
        ".out.csv.partial-abc",  # not a pid: not ours to judge
        ".out.csv.partial-99999999999",  # no system has such a pid
        f".other.csv.partial-{dead}",  # another file's
        "out.csv.partial-7",  # not hidden: a user's file
    ]
    swept = [f".out.csv.partial-{dead}", f".out.csv.partial-{os.getpid()}"]  # ours: a namesake's
    for name in kept + swept:
        (tmp_path / name).write_text("half an export")
    export_csv(conn, tmp_path / "out.csv")
    assert listing(tmp_path) == sorted([*kept, "out.csv"])


def _a_dead_pid() -> int:
    with subprocess.Popen(["true"]) as process:
        pass
    return process.pid


@contextmanager
def as_another_user() -> Iterator[None]:
    """Run as an ordinary user, real uid included (signalling rights follow the real
    uid); the saved uid stays root's, to come back."""
    uid = pwd.getpwnam("embedded_postgres").pw_uid
    os.setresuid(uid, uid, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to another user, which only root can")
def test_an_unwritable_directory_is_one_clear_error(conn: psycopg.Connection[Any]) -> None:
    directory = Path(tempfile.mkdtemp(prefix="cdal-export-"))  # root's; others may only read
    try:
        directory.chmod(0o755)
        (directory / ".out.csv.partial-1").write_text("init's, as far as anyone can tell")
        target = directory / "out.csv"
        with as_another_user(), pytest.raises(CsvFileError) as caught:
            export_csv(conn, target)
        assert str(caught.value) == f"cannot write {target}: permission denied"
        # pid 1 is not that user's to signal (EPERM): running, so its partial stays.
        assert listing(directory) == [".out.csv.partial-1"]
    finally:
        shutil.rmtree(directory)


def test_a_socket_is_not_a_file_to_write(tmp_path: Path, conn: psycopg.Connection[Any]) -> None:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        with pytest.raises(CsvFileError) as caught:
            export_csv(conn, path)
    assert str(caught.value) == f"cannot write {path}: no such device or address"


def test_a_directory_put_where_the_rejects_file_goes_is_one_clear_error(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("name,phone\nBad,12\n")
    rejects_path = tmp_path / "in.rejects.csv"
    rejects = RejectsFile(rejects_path, source).__enter__()
    rejects.write(2, "phone '12' has 2 digits; at least 7 are needed")
    (rejects_path / "made-meanwhile").mkdir(parents=True)  # by someone else, meanwhile
    with pytest.raises(CsvFileError) as caught:
        rejects.__exit__(None, None, None)  # the import went well: time to rename
    assert str(caught.value) == f"cannot write the rejects file {rejects_path}: is a directory"
    assert listing(tmp_path) == ["in.csv", "in.rejects.csv"]


# --- what the file holds --------------------------------------------------------------------

FORMULAS = {
    "name": '=HYPERLINK("http://evil.example","Click")',
    "phone": "+1 555 123 4567",
    "phone_secondary": "-555-987-6543",
    "email": "=2+5@example.com",
    "address": "@SUM(1+1)*cmd|' /C calc'!A0",
    "notes": "\t=1+1",
}


def _read(path: Path, delimiter: str = ",") -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file, delimiter=delimiter))


def test_excel_safe_defuses_formula_cells_and_the_default_keeps_every_byte(
    tmp_path: Path, dsn: str, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # By hand, as a DBA could: the models trim the leading tab of the notes.
    conn.execute(
        f"INSERT INTO customers ({', '.join(FORMULAS)}) VALUES ({', '.join(['%s'] * 6)})",
        list(FORMULAS.values()),
    )
    conn.execute("INSERT INTO customers (name, phone) VALUES ('Ann Lee', '555 000 0001')")

    assert run(capsys, dsn, "export", str(tmp_path / "raw.csv"))[0] == 0
    assert _read(tmp_path / "raw.csv") == [
        list(CSV_COLUMNS),
        [*FORMULAS.values(), "True"],
        ["Ann Lee", "555 000 0001", "", "", "", "", "True"],
    ]

    assert run(capsys, dsn, "export", str(tmp_path / "safe.csv"), "--excel-safe")[0] == 0
    assert _read(tmp_path / "safe.csv") == [
        list(CSV_COLUMNS),
        [*(f"'{value}" for value in FORMULAS.values()), "True"],
        ["Ann Lee", "555 000 0001", "", "", "", "", "True"],
    ]


@pytest.mark.parametrize(
    ("option", "delimiter"),
    [(",", ","), (";", ";"), ("tab", "\t"), ("\\t", "\t"), ("\t", "\t"), ("TAB", "\t")],
)
def test_export_and_import_agree_on_a_delimiter(
    tmp_path: Path,
    dsn: str,
    empty_dsn: str,
    conn: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    option: str,
    delimiter: str,
) -> None:
    CustomerRepository(conn).create(
        {"name": 'Lee; Ann, "Annie"', "phone": "555 000 0001", "notes": "a\tb;c,d"}
    )
    out_file = tmp_path / "out.csv"
    assert run(capsys, dsn, "export", str(out_file), "--delimiter", option)[0] == 0
    assert out_file.read_text().splitlines()[0] == delimiter.join(CSV_COLUMNS)
    assert run(capsys, empty_dsn, "migrate")[0] == 0
    assert run(capsys, empty_dsn, "import", str(out_file), "--delimiter", option)[0] == 0
    with psycopg.connect(empty_dsn) as copy:
        assert copy.execute(SNAPSHOT).fetchall() == conn.execute(SNAPSHOT).fetchall()


def _longest_notes() -> str:
    """MAX_NOTES_LENGTH characters of what notes hold: lines, tabs, quotes, separators,
    accents, other scripts and an emoji (NFC, LF line breaks, as the models store them)."""
    paragraph = 'Called 2026-11-26;\tasked about "the order", 3 x 4 = 12 €\nZoë Ølsen 漢字 🙂\n'
    notes = (paragraph * (MAX_NOTES_LENGTH // len(paragraph) + 1))[:MAX_NOTES_LENGTH]
    return notes[:-1] + "."  # not ending in whitespace, which the models would trim


@pytest.mark.parametrize("delimiter", [",", ";", "tab"])
def test_export_then_import_is_exact_at_the_models_limits(
    tmp_path: Path,
    dsn: str,
    empty_dsn: str,
    conn: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    delimiter: str,
) -> None:
    customers = CustomerRepository(conn)
    longest = customers.create(
        {
            "name": 'Ann "Quotes" O\'Brien, Jr.; Esq.',
            "phone": "+1 (555) 000-0001",
            "phone_secondary": "555.000.0002",
            "email": "ann.o.brien@example.com",
            "address": ("Flat 1\n2 Main St\tBack door\n" * 40)[: MAX_ADDRESS_LENGTH - 1] + ".",
            "notes": _longest_notes(),
        }
    )
    # Every character a quote: CSV doubles each, the longest field an export writes.
    customers.create({"name": "Quotes", "phone": "555 000 0003", "notes": '"' * MAX_NOTES_LENGTH})
    customers.soft_delete(customers.create({"name": "Gone", "phone": "555 000 0004"}).id)
    assert longest.notes is not None
    assert len(longest.notes) == MAX_NOTES_LENGTH

    out_file = tmp_path / "out.csv"
    assert run(capsys, dsn, "export", str(out_file), "--delimiter", delimiter)[:2] == (
        0,
        f"exported 3 customers to {out_file}\n",
    )
    assert run(capsys, empty_dsn, "migrate")[0] == 0
    assert run(capsys, empty_dsn, "import", str(out_file), "--delimiter", delimiter)[:2] == (
        0,
        "imported 3 customers from out.csv\n",
    )
    with psycopg.connect(empty_dsn) as copy:
        assert copy.execute(SNAPSHOT).fetchall() == conn.execute(SNAPSHOT).fetchall()


def test_export_reads_in_batches_and_counts_every_row(
    tmp_path: Path, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(
        "INSERT INTO customers (name, phone, is_active) "
        "SELECT 'Customer ' || i, '555' || lpad(i::text, 7, '0'), i % 3 > 0 "
        "FROM generate_series(1, 2500) AS i"
    )
    target = tmp_path / "out.csv"
    assert export_csv(conn, target) == 2500
    assert export_csv(conn, target, active_only=True) == 1667
    assert len(_read(target)) == 1 + 1667
