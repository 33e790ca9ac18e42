"""The customer-dal command: what the Makefile and release engineers run."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from customer_dal import cli, embedded
from customer_dal.db import describe

from .shipped import SHIPPED, status_lines


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_migrate_status_rollback_round_trip(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    named = f"database: {describe(empty_dsn)}\n"
    assert run(capsys, "--dsn", empty_dsn, "status") == (
        1,
        status_lines("pending"),
        named,
    )
    assert run(capsys, "--dsn", empty_dsn, "migrate") == (
        0,
        "".join(f"applied {i}\n" for i in SHIPPED),
        named,
    )
    assert run(capsys, "--dsn", empty_dsn, "migrate")[1] == (
        "nothing to apply: the schema is up to date\n"
    )
    assert run(capsys, "--dsn", empty_dsn, "status")[0] == 0
    assert run(capsys, "--dsn", empty_dsn, "rollback", "--steps", str(len(SHIPPED)))[1] == (
        "".join(f"rolled back {i}\n" for i in SHIPPED[::-1])
    )
    assert run(capsys, "--dsn", empty_dsn, "rollback")[1] == (
        "nothing to roll back: no migration is applied\n"
    )


def test_expected_failures_are_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--dsn", "postgresql://nobody@127.0.0.1:1/x", "migrate")
    assert (code, out) == (1, "")
    database, error = err.splitlines()
    assert database == "database: nobody@127.0.0.1:1/x"
    assert error.startswith("customer-dal: error: cannot connect to nobody@127.0.0.1:1/x")


@pytest.mark.parametrize("steps", ["0", "-1", "two"])
def test_rollback_steps_must_be_positive(capsys: pytest.CaptureFixture[str], steps: str) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["rollback", "--steps", steps])
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "customer-dal: error: rollback: argument --steps: expected a whole number of at least 1, "
        f"got {steps!r} (see customer-dal rollback --help)\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--dsn", "postgresql://a@b/c", "dsn"],
        ["dsn", "--dsn", "postgresql://a@b/c"],
        ["--dsn", "postgresql://x@y/z", "dsn", "--dsn", "postgresql://a@b/c"],  # the later wins
    ],
)
def test_dsn_may_come_before_or_after_the_command(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert run(capsys, *argv) == (0, "postgresql://a@b/c\n", "database: a@b:5432/c\n")


def test_the_embedded_server_is_named_by_its_data_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv(embedded.PGDATA_ENV, str(tmp_path / "pgdata"))
    monkeypatch.setattr(embedded, "embedded_dsn", lambda: "postgresql://postgres@/postgres")
    assert run(capsys, "dsn") == (
        0,
        "postgresql://postgres@/postgres\n",
        f"database: embedded {tmp_path / 'pgdata'}\n",
    )


def test_new_migration_creates_the_next_numbered_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "new-migration", "add_tags", "--directory", str(tmp_path))[0] == 0
    assert run(capsys, "new-migration", "add_more", "--directory", str(tmp_path))[0] == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "0001_add_tags.rollback.sql",
        "0001_add_tags.sql",
        "0002_add_more.rollback.sql",
        "0002_add_more.sql",
    ]
    assert (
        (tmp_path / "0002_add_more.sql")
        .read_text()
        .startswith(
            "-- Add more: say what and why.\n-- depends: 0001_add_tags\n\nSET LOCAL lock_timeout"
        )
    )
    assert "statement_timeout" in (tmp_path / "0002_add_more.rollback.sql").read_text()
    assert "0001" not in (tmp_path / "0001_add_tags.sql").read_text().splitlines()[1]


def test_new_migration_rejects_a_name_that_is_not_snake_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "new-migration", "Add Tags!", "--directory", str(tmp_path))
    assert code == 1
    assert "must be lower_snake_case" in err
    assert list(tmp_path.iterdir()) == []


def test_dsn_prints_the_resolved_dsn(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--dsn", "postgresql://a@b/c", "dsn") == (
        0,
        "postgresql://a@b/c\n",
        "database: a@b:5432/c\n",
    )


def test_psql_replaces_the_process_with_psql_and_passes_no_password_in_argv(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[str, list[str], str | None]] = []
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr(embedded, "psql_executable", lambda: "/usr/bin/psql")
    monkeypatch.setattr(
        cli.os,
        "execve",
        lambda path, argv, env: calls.append((path, argv, env.get("PGPASSWORD"))),
    )
    run(capsys, "--dsn", "postgresql://a:s3cret@b/c", "psql", "--", "-c", r"\dt")
    run(capsys, "--dsn", "postgresql://a@b/c", "psql")
    assert calls == [
        ("/usr/bin/psql", ["/usr/bin/psql", "user=a dbname=c host=b", "-c", r"\dt"], "s3cret"),
        ("/usr/bin/psql", ["/usr/bin/psql", "user=a dbname=c host=b"], None),
    ]


@pytest.mark.slow
def test_the_real_psql_child_sees_no_password_in_its_arguments(tmp_path: Path) -> None:
    """A stand-in psql first on PATH (the system psql is preferred) reports what it got."""
    fake = tmp_path / "psql"
    fake.write_text('#!/bin/sh\necho "argv: $*"\necho "PGPASSWORD set: ${PGPASSWORD:+yes}"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    env.pop("PGPASSWORD", None)
    result = subprocess.run(
        [sys.executable, "-m", "customer_dal", "psql", "--dsn", "postgresql://ann:s3cret@db/shop"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "database: ann@db:5432/shop\n")
    assert result.stdout == "argv: user=ann dbname=shop host=db\nPGPASSWORD set: yes\n"


def test_db_stop_reports_what_it_did(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(embedded, "stop_embedded", lambda: True)
    assert run(capsys, "db-stop")[1].startswith("stopped the embedded server in ")
    monkeypatch.setattr(embedded, "stop_embedded", lambda: False)
    assert run(capsys, "db-stop")[1] == "the embedded server was not running\n"


def test_python_dash_m_runs_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["customer_dal", "--dsn", "postgresql://a@b/c", "dsn"])
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("customer_dal", run_name="__main__")
    assert caught.value.code == 0
    assert capsys.readouterr().out == "postgresql://a@b/c\n"


def test_a_new_migration_into_a_missing_directory_names_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    code, _, err = run(capsys, "new-migration", "add_tags", "--directory", str(missing))
    assert code == 1
    assert err == (
        f"customer-dal: error: {missing / '0001_add_tags.sql'}: no such file or directory\n"
    )
