"""Whatever a user gets wrong, the CLI answers in one line and an exit code, never a traceback.

The matrix runs each bad invocation in-process; a few run as real processes:
Ctrl-C at a random moment, --debug, and the Makefile.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from customer_dal import cli
from customer_dal.db import describe, with_database
from tests.test_bulk import COPYING, terminate, when_backend

from .shipped import status_lines

ROOT = Path(__file__).resolve().parent.parent
HEADER = "name,phone\n"
UNREACHABLE = "postgresql://nobody@127.0.0.1:1/shop"
ERROR = "customer-dal: error: "


@dataclass(frozen=True)
class Case:
    """A bad invocation: ``argv`` (``{tmp}``, ``{never_migrated}``, ``{lowly}`` and
    ``{no_database}`` are filled in), the exit code, and a regular expression for the
    start of the error line after ``customer-dal: error:``."""

    argv: list[str]
    code: int
    says: str
    env: dict[str, str | None] = field(default_factory=dict)
    files: dict[str, str | bytes] = field(default_factory=dict)


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's CUSTOMER_DAL_DEBUG=1 would turn every answer into a traceback."""
    monkeypatch.delenv("CUSTOMER_DAL_DEBUG", raising=False)


CASES = {
    # usage: argparse's errors, in the same one-line form, exit code 2
    "no-command": Case([], 2, r"the following arguments are required: COMMAND"),
    "unknown-command": Case(["frobnicate"], 2, r"argument COMMAND: invalid choice: 'frobnicate'"),
    "unknown-option": Case(["migrate", "--force"], 2, r"unrecognized arguments: --force"),
    "import-without-file": Case(["import"], 2, r"import: the following arguments are required"),
    "search-without-query": Case(["search"], 2, r"search: the following arguments are required"),
    "seed-without-count": Case(["seed"], 2, r"seed: the following arguments are required"),
    "seed-count-negative": Case(["seed", "--count", "-3"], 2, r"seed: argument --count: expected"),
    "steps-zero": Case(["rollback", "--steps", "0"], 2, r"rollback: argument --steps: expected"),
    "steps-word": Case(["rollback", "--steps", "two"], 2, r"rollback: argument --steps: expected"),
    "limit-word": Case(["search", "ann", "--limit", "x"], 2, r"search: argument --limit: expected"),
    # input validation (pydantic), named by field, before any database is touched
    "empty-query": Case(["search", ""], 1, r"query is required$"),
    "blank-query": Case(["search", "   "], 1, r"query is required$"),
    "101-characters": Case(["search", "a" * 101], 1, r"query is longer than 100 characters$"),
    "tab-in-query": Case(
        ["search", "ann\tlee"], 1, r"query must not contain control character U\+0009 \(at"
    ),
    "limit-1000": Case(["search", "ann", "--limit", "1000"], 1, r"limit must be at most 100$"),
    "import-delimiter-pipe": Case(
        ["import", "{tmp}/in.csv", "--delimiter", "|"],
        2,
        r"import: argument --delimiter: expected ',', ';' or tab, got '\|'",
    ),
    "export-delimiter-word": Case(
        ["export", "{tmp}/out.csv", "--delimiter", "semicolon"],
        2,
        r"export: argument --delimiter: expected ',', ';' or tab, got 'semicolon'",
    ),
    # where the database is
    "dsn-a-word": Case(["--dsn", "nonsense", "status"], 1, r'malformed database URL: missing "="'),
    "dsn-bad-url-password": Case(
        ["--dsn", "postgresql://ann:s3cret@[db/shop", "migrate"], 1, r"malformed database URL: "
    ),
    "url-unknown-parameter": Case(
        ["migrate"],
        1,
        r"malformed database URL: invalid URI query parameter",
        env={"DATABASE_URL": "postgresql://ann:s3cret@db/shop?colour=blue"},
    ),
    "database-url-empty": Case(
        ["status"], 1, r"DATABASE_URL is set but empty; unset it", env={"DATABASE_URL": ""}
    ),
    "database-url-blank": Case(
        ["seed", "--count", "1"], 1, r"DATABASE_URL is set but empty", env={"DATABASE_URL": "  "}
    ),
    "unreachable": Case(["--dsn", UNREACHABLE, "migrate"], 1, r"cannot connect to nobody@"),
    "unreachable-dsn-after": Case(
        ["search", "ann", "--dsn", "postgresql://ann:s3cret@127.0.0.1:1/shop"],
        1,
        r"cannot connect to ann@127\.0\.0\.1:1/shop: ",
    ),
    "no-such-database": Case(
        ["--dsn", "{no_database}", "status"], 1, r'cannot connect to .*"customer_dal_nowhere"'
    ),
    "pgdata-is-a-file": Case(
        ["migrate"],
        1,
        r"CUSTOMER_DAL_PGDATA \(or \.pgdata\) names .*, which is not a directory",
        env={"DATABASE_URL": None, "CUSTOMER_DAL_PGDATA": "{tmp}/in.csv"},
        files={"in.csv": HEADER},
    ),
    "migrate-without-create-privilege": Case(
        ["--dsn", "{lowly}", "migrate"], 1, r".*: permission denied for database"
    ),
    "bench-without-createdb": Case(
        ["--dsn", "{lowly}", "bench", "--rows", "10"],
        1,
        r".*: permission denied to create database",
    ),
    # files
    "import-a-directory": Case(
        ["--dsn", UNREACHABLE, "import", "{tmp}"], 1, r"cannot read .*: it is a directory"
    ),
    "import-parent-is-a-file": Case(
        ["import", "{tmp}/in.csv/x.csv"],
        1,
        r"cannot read .*/in\.csv/x\.csv: not a directory",
        files={"in.csv": HEADER},
    ),
    "import-missing-file": Case(
        ["import", "{tmp}/nope.csv"], 1, r"cannot read .*/nope\.csv: no such file or directory"
    ),
    "import-a-fifo": Case(["import", "{tmp}/fifo"], 1, r"cannot read .*/fifo: not a regular file"),
    "import-latin-1": Case(
        ["import", "{tmp}/in.csv"],
        1,
        r"in\.csv is not UTF-8",
        files={"in.csv": HEADER.encode() + "José,555-000-0001\n".encode("latin-1")},
    ),
    "import-empty-file": Case(
        ["import", "{tmp}/in.csv"],
        1,
        r"in\.csv: the header lacks the required column\(s\) name, phone",
        files={"in.csv": ""},
    ),
    "import-no-header": Case(
        ["import", "{tmp}/in.csv"],
        1,
        r"in\.csv: the header lacks the required column\(s\) name, phone",
        files={"in.csv": "Ann Lee,555-000-0001\n"},
    ),
    "import-semicolons": Case(
        ["import", "{tmp}/in.csv"],
        1,
        r"in\.csv: the header lacks the required column\(s\) name, phone; it reads 'name;phone'; "
        r"if the columns are separated by ';', use --delimiter ';'$",
        files={"in.csv": "name;phone\nAnn Lee;555-000-0001\n"},
    ),
    "import-broken-header": Case(
        ["import", "{tmp}/in.csv"],
        1,
        r"in\.csv, line 1: unexpected end of data",
        files={"in.csv": '"name,phone\n'},
    ),
    "export-into-a-directory": Case(
        ["export", "{tmp}"], 1, r"cannot write .*: it is a directory; name a file in it"
    ),
    "export-missing-directory": Case(
        ["export", "/missing/dir/x.csv"],
        1,
        r"cannot write /missing/dir/x\.csv: there is no directory /missing/dir",
    ),
    "new-migration-bad-name": Case(
        ["new-migration", "Add Tags!", "--directory", "{tmp}"], 1, r"migration name 'Add Tags!'"
    ),
    "new-migration-missing-directory": Case(
        ["new-migration", "add_tags", "--directory", "{tmp}/nowhere"],
        1,
        r".*/nowhere/0001_add_tags\.sql: no such file or directory",
    ),
    # a database that was never migrated
    "search-never-migrated": Case(
        ["--dsn", "{never_migrated}", "search", "ann"], 1, r".* is not migrated: run make migrate"
    ),
    "import-never-migrated": Case(
        ["--dsn", "{never_migrated}", "import", "{tmp}/in.csv"],
        1,
        r".* is not migrated: run make migrate",
        files={"in.csv": HEADER + "Ann Lee,555-000-0001\n"},
    ),
    "export-never-migrated": Case(
        ["--dsn", "{never_migrated}", "export", "{tmp}/out.csv"],
        1,
        r".* is not migrated: run make migrate",
    ),
    "seed-never-migrated": Case(
        ["--dsn", "{never_migrated}", "seed", "--count", "5"],
        1,
        r".* is not migrated: run make migrate",
    ),
}


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    """Run in-process; return the exit code (argparse's too) and stdout + stderr."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def lowly(server_dsn: str, empty_dsn: str) -> Iterator[str]:
    """``empty_dsn`` as a role that may connect, but create neither schemas nor databases."""
    role = f"cdal_lowly_{os.getpid()}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'lowly'")
        try:
            params = psycopg.conninfo.conninfo_to_dict(empty_dsn)
            params.update(user=role, password="lowly")  # noqa: S106 - a throwaway role's
            yield psycopg.conninfo.make_conninfo(**params)
        finally:
            admin.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_invocation_is_one_line_and_an_exit_code(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    for filename, content in case.files.items():
        data = content if isinstance(content, bytes) else content.encode()
        (tmp_path / filename).write_bytes(data)
    if "{tmp}/fifo" in case.argv:
        os.mkfifo(tmp_path / "fifo")
    places = {"tmp": str(tmp_path)}
    for fixture in ("never_migrated", "lowly", "no_database"):
        if any(f"{{{fixture}}}" in arg for arg in case.argv):
            places[fixture] = _place(request, fixture)
    for variable, value in case.env.items():
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value.format(**places))

    code, output = run(capsys, [arg.format(**places) for arg in case.argv])

    assert "Traceback" not in output
    assert "s3cret" not in output
    assert code == case.code
    said = [line for line in output.splitlines() if not line.startswith("database: ")]
    assert len(said) == 1, output
    assert said[0].startswith(ERROR)
    assert re.match(case.says, said[0].removeprefix(ERROR)), said[0]


def _place(request: pytest.FixtureRequest, name: str) -> str:
    if name == "never_migrated":
        return str(request.getfixturevalue("empty_dsn"))
    if name == "lowly":
        return str(request.getfixturevalue("lowly"))
    return with_database(request.getfixturevalue("server_dsn"), "customer_dal_nowhere")


def test_the_matrix_is_big_enough() -> None:
    assert len(CASES) >= 30


def test_the_database_is_named_before_the_error(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(capsys, ["--dsn", empty_dsn, "search", "ann"])
    assert code == 1
    assert output.splitlines()[0] == f"database: {describe(empty_dsn)}"


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to another user, which only root can")
def test_an_unreadable_file_names_the_path_and_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run as embedded_postgres (root reads anything), on a file only root may read."""
    import pwd

    secret = tmp_path / "in.csv"
    secret.write_text(HEADER)
    secret.chmod(0o600)
    tmp_path.chmod(0o755)
    os.seteuid(pwd.getpwnam("embedded_postgres").pw_uid)
    try:
        code, output = run(capsys, ["--dsn", UNREACHABLE, "import", str(secret)])
    finally:
        os.seteuid(0)
    assert (code, output) == (1, f"{ERROR}cannot read {secret}: permission denied\n")


# --- faults while working ----------------------------------------------------------------


def _big_csv(path: Path, rows: int) -> Path:
    with path.open("w") as file:
        file.write(HEADER)
        file.writelines(
            f"Customer {i},555-{i // 10_000:03d}-{i % 10_000:04d}\n" for i in range(rows)
        )
    return path


def _count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM customers").fetchone()
    assert row is not None
    return int(row[0])


def test_a_backend_terminated_during_import_is_one_line(
    tmp_path: Path, dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _big_csv(tmp_path / "big.csv", 500_000)
    watcher = when_backend(dsn, COPYING, terminate)
    code, output = run(capsys, ["--dsn", dsn, "import", str(path)])
    watcher.join()
    assert code == 1
    assert "Traceback" not in output
    database, error = output.splitlines()
    assert database == f"database: {describe(dsn)}"
    assert error.startswith(f"{ERROR}lost the connection to ")
    assert "the transaction was lost and nothing in it was committed" in error
    assert _count(dsn) == 0


@pytest.fixture
def slow_dsn(dsn: str) -> str:
    """``dsn``, where each customer takes a second to insert: a server behind a slow
    trigger (or a lock), which still has most of what the client sent to read."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER slow_insert BEFORE INSERT ON customers "
            "FOR EACH ROW EXECUTE FUNCTION slow_insert()"
        )
    return dsn


@pytest.fixture
def ctrl_c_after_5000_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """``seed`` gets a real SIGINT once 5,000 rows have gone into its COPY.

    Sent from the main thread itself, so the KeyboardInterrupt rises at a known
    place. A signal from elsewhere often lands inside pydantic's validators,
    called from Rust, which throws coverage's tracer off the lines that follow;
    the real-process tests below send it at a random moment.
    """

    def fake_customers(count: int, seed: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        yield from real_fake_customers(5000, seed)
        signal.raise_signal(signal.SIGINT)
        yield from real_fake_customers(count, seed + 1)  # not reached

    real_fake_customers = cli.fake_customers
    monkeypatch.setattr(cli, "fake_customers", fake_customers)


@pytest.mark.usefixtures("ctrl_c_after_5000_rows")
def test_ctrl_c_during_seed_rolls_back_promptly_and_says_so(
    slow_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code, output = run(capsys, ["--dsn", slow_dsn, "seed", "--count", "2000000"])
    assert (code, output.splitlines()[-1]) == (
        130,
        "customer-dal: interrupted, nothing was written",
    )
    assert time.monotonic() - started < 15  # the server did not read the 4,999 rows left
    assert _count(slow_dsn) == 0


@pytest.mark.usefixtures("ctrl_c_after_5000_rows")
def test_debug_lets_the_interrupt_through(dsn: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        cli.main(["seed", "--count", "2000000", "--dsn", dsn, "--debug"])
    assert _count(dsn) == 0


@pytest.mark.parametrize(
    ("argv", "env", "shows_traceback"),
    [
        (["--debug", "status"], {}, True),
        (["status", "--debug"], {}, True),
        (["status"], {"CUSTOMER_DAL_DEBUG": "1"}, True),
        (["status"], {"CUSTOMER_DAL_DEBUG": "0"}, False),
    ],
)
def test_debug_lets_the_exception_through(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    shows_traceback: bool,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    if shows_traceback:
        with pytest.raises(Exception, match="DATABASE_URL is set but empty") as caught:
            cli.main(argv)
        assert type(caught.value).__name__ == "ConfigurationError"
    else:
        assert run(capsys, argv)[0] == 1


# --- as real processes -------------------------------------------------------------------


def _customer_dal(*argv: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "customer_dal", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _ctrl_c_once(process: subprocess.Popen[str], dsn: str, condition: str) -> tuple[str, str]:
    """SIGINT ``process`` once a backend of ``dsn`` meets ``condition``; its stdout, stderr."""
    watcher = when_backend(dsn, condition, lambda _, __: process.send_signal(signal.SIGINT))
    out, err = process.communicate(timeout=120)
    watcher.join()
    return out, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "server", ["fast", "slow"], ids=["as-rows-stream-in", "while-the-server-lags-behind"]
)
def test_ctrl_c_in_a_real_process_exits_130_and_writes_nothing(
    server: str, request: pytest.FixtureRequest
) -> None:
    dsn = str(request.getfixturevalue("dsn" if server == "fast" else "slow_dsn"))
    condition = COPYING if server == "fast" else "a.wait_event = 'PgSleep'"
    started = time.monotonic()
    with _customer_dal("seed", "--count", "2000000", "--dsn", dsn) as process:
        out, err = _ctrl_c_once(process, dsn, condition)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    assert err.splitlines() == [
        f"database: {describe(dsn)}",
        "customer-dal: interrupted, nothing was written",
    ]
    assert time.monotonic() - started < 60
    assert _count(dsn) == 0


@pytest.mark.slow
def test_debug_shows_the_traceback_in_a_real_process() -> None:
    with _customer_dal("--debug", "--dsn", "nonsense", "status") as process:
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err.startswith("Traceback")
    assert "customer_dal.ConfigurationError: malformed database URL" in err


def _make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # -o: never rebuild .venv here (it would reach for the network); run the target as is.
    # Under make test, the outer make's flags (its jobserver) are not this one's.
    outer = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}
    return subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", target],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in outer}, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_make_migrate_with_an_empty_database_url_fails_in_one_line() -> None:
    result = _make("migrate", {"DATABASE_URL": ""})
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines()[0] == (
        f"{ERROR}DATABASE_URL is set but empty; unset it to use the embedded server"
    )


@pytest.mark.slow
def test_make_migrate_and_status_name_the_database_and_work(empty_dsn: str) -> None:
    migrated = _make("migrate", {"DATABASE_URL": empty_dsn})
    assert (migrated.returncode, migrated.stderr) == (0, f"database: {describe(empty_dsn)}\n")
    status = _make("status", {"DATABASE_URL": empty_dsn})
    assert (status.returncode, status.stdout) == (
        0,
        status_lines("applied"),
    )


@pytest.mark.slow
def test_make_psql_passes_the_password_outside_the_argument_list(tmp_path: Path) -> None:
    fake = tmp_path / "psql"
    fake.write_text('#!/bin/sh\necho "argv: $*"\necho "PGPASSWORD: $PGPASSWORD"\n')
    fake.chmod(0o755)
    result = _make(
        "psql",
        {
            "DATABASE_URL": "postgresql://ann:s3cret@db.example/shop",
            "PATH": f"{tmp_path}:{os.environ['PATH']}",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "argv: user=ann dbname=shop host=db.example\nPGPASSWORD: s3cret\n"
