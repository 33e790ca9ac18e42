"""The customer-dal command: what the Makefile and release engineers run."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from customer_dal import cli, embedded


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_migrate_status_rollback_round_trip(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "--dsn", empty_dsn, "status") == (
        1,
        "pending  0001_users\npending  0002_customers\n",
        "",
    )
    assert run(capsys, "--dsn", empty_dsn, "migrate") == (
        0,
        "applied 0001_users\napplied 0002_customers\n",
        "",
    )
    assert run(capsys, "--dsn", empty_dsn, "migrate")[1] == (
        "nothing to apply: the schema is up to date\n"
    )
    assert run(capsys, "--dsn", empty_dsn, "status")[0] == 0
    assert run(capsys, "--dsn", empty_dsn, "rollback", "--steps", "2")[1] == (
        "rolled back 0002_customers\nrolled back 0001_users\n"
    )
    assert run(capsys, "--dsn", empty_dsn, "rollback")[1] == (
        "nothing to roll back: no migration is applied\n"
    )


def test_expected_failures_are_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--dsn", "postgresql://nobody@127.0.0.1:1/x", "migrate")
    assert (code, out) == (1, "")
    assert err.startswith("customer-dal: error: cannot connect to nobody@127.0.0.1:1/x")
    assert err.count("\n") == 1


@pytest.mark.parametrize("steps", ["0", "-1", "two"])
def test_rollback_steps_must_be_positive(capsys: pytest.CaptureFixture[str], steps: str) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["rollback", "--steps", steps])
    assert caught.value.code == 2
    assert "expected a whole number of at least 1" in capsys.readouterr().err


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
    assert run(capsys, "--dsn", "postgresql://a@b/c", "dsn") == (0, "postgresql://a@b/c\n", "")


def test_psql_replaces_the_process_with_psql(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(embedded, "psql_executable", lambda: "/usr/bin/psql")
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: calls.append((path, argv)))
    run(capsys, "--dsn", "postgresql://a@b/c", "psql", "--", "-c", r"\dt")
    run(capsys, "--dsn", "postgresql://a@b/c", "psql")
    assert calls == [
        ("/usr/bin/psql", ["/usr/bin/psql", "postgresql://a@b/c", "-c", r"\dt"]),
        ("/usr/bin/psql", ["/usr/bin/psql", "postgresql://a@b/c"]),
    ]


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
