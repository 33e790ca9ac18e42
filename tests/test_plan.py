"""``migrate --plan``: each pending migration's SQL, whether it is transactional and the
locks its statements take, and nothing changed."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from customer_dal import MigrationError, cli, migrate, migration_status
from customer_dal.bench import migrations_before
from customer_dal.locks import statement_locks
from customer_dal.migrations import BOOKKEEPING_SCHEMA, migration_plan
from customer_dal.resources import migrations_directory

from .catalog import catalog_snapshot
from .shipped import SHIPPED, states

EXPAND = "0008_accent_folding"


@pytest.fixture
def before_expand(empty_dsn: str, tmp_path: Path) -> str:
    older = tmp_path / "older"
    older.mkdir()
    migrate(empty_dsn, directory=migrations_before(older, EXPAND))
    return empty_dsn


def test_the_plan_lists_what_migrate_would_apply_and_changes_nothing(
    before_expand: str,
) -> None:
    catalog = catalog_snapshot(before_expand)
    status = migration_status(before_expand)
    planned = migration_plan(before_expand)
    assert [m.id for m in planned] == SHIPPED[SHIPPED.index(EXPAND) :]
    expand = planned[0]
    assert expand.transactional is False
    sql = (migrations_directory() / f"{EXPAND}.sql").read_text()
    assert all(statement.sql in sql for statement in expand.statements)
    index = next(s for s in expand.statements if "customers_folded_order_idx\n" in s.sql)
    assert index.sql.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS")
    assert index.locks == [
        "SHARE UPDATE EXCLUSIVE on customers (blocks no reads or writes, only schema changes "
        "and VACUUM; waits for older transactions to end)"
    ]
    add_columns = next(s for s in expand.statements if "ADD COLUMN IF NOT EXISTS" in s.sql)
    assert add_columns.locks == ["ACCESS EXCLUSIVE on customers (blocks reads and writes)"]
    assert catalog_snapshot(before_expand) == catalog
    assert migration_status(before_expand) == status


def test_a_never_migrated_database_gets_a_plan_and_no_bookkeeping(empty_dsn: str) -> None:
    planned = migration_plan(empty_dsn)
    assert [m.id for m in planned] == SHIPPED
    assert planned[0].transactional is True
    with psycopg.connect(empty_dsn) as conn:
        [(schema,)] = conn.execute("SELECT to_regnamespace(%s)", [BOOKKEEPING_SCHEMA]).fetchall()
    assert schema is None


def test_an_up_to_date_database_has_an_empty_plan(dsn: str) -> None:
    assert migration_plan(dsn) == []


def test_the_plan_refuses_an_edited_migration_as_migrate_does(dsn: str, tmp_path: Path) -> None:
    edited = tmp_path / "migrations"
    edited.mkdir()
    for path in migrations_directory().glob("*.sql"):
        (edited / path.name).write_bytes(path.read_bytes())
    first = edited / f"{SHIPPED[0]}.sql"
    first.write_text(first.read_text() + "\n-- an edit\n")
    with pytest.raises(MigrationError, match="was edited after it was applied"):
        migration_plan(dsn, directory=edited)


def test_the_plan_refuses_a_database_ahead_of_the_checkout(dsn: str, tmp_path: Path) -> None:
    older = tmp_path / "older"
    older.mkdir()
    with pytest.raises(MigrationError, match="migrations this checkout does not know"):
        migration_plan(dsn, directory=migrations_before(older, EXPAND))


def test_cli_migrate_plan_prints_sql_transactionality_and_locks(
    before_expand: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--dsn", before_expand, "migrate", "--plan"]) == 0
    out = capsys.readouterr().out
    assert f"-- migration {EXPAND} (not transactional: each statement commits on its own" in out
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_search_folded_trgm_idx" in out
    assert "locks: SHARE ROW EXCLUSIVE on customers (blocks writes)\nCREATE TRIGGER" in out
    assert "locks: none on any table\nSET lock_timeout = '500ms';" in out
    pending = len(SHIPPED) - SHIPPED.index(EXPAND)
    assert out.endswith(f"-- {pending} migrations pending; nothing was changed\n")
    assert migration_status(before_expand)[-2:] == states("pending", SHIPPED[-2:])


def test_cli_plan_says_when_a_migration_is_transactional(
    empty_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--dsn", empty_dsn, "migrate", "--plan"]) == 0
    out = capsys.readouterr().out
    assert f"-- migration {SHIPPED[0]} (transactional: its statements run in one transaction" in out
    assert out.endswith(f"-- {len(SHIPPED)} migrations pending; nothing was changed\n")


@pytest.mark.parametrize(
    ("statement", "locks"),
    [
        ("SET lock_timeout = '1s';", []),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1;", []),
        ("CREATE INDEX i ON t (a);", ["SHARE on t (blocks writes)"]),
        ("CREATE UNIQUE INDEX i ON ONLY s.t (a);", ["SHARE on s.t (blocks writes)"]),
        (
            "DROP INDEX IF EXISTS i;",
            ["ACCESS EXCLUSIVE on the table of index i (blocks reads and writes)"],
        ),
        (
            "ALTER TABLE t ADD COLUMN c text GENERATED ALWAYS AS (lower(a)) STORED;",
            [
                "ACCESS EXCLUSIVE on t (blocks reads and writes; rewrites the table, holding "
                "the lock as long as that takes)"
            ],
        ),
        (
            "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
            [
                "ACCESS EXCLUSIVE on t (blocks reads and writes; may rewrite the table, "
                "holding the lock as long as that takes)"
            ],
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);",
            [
                "ACCESS EXCLUSIVE on t (blocks reads and writes; checks every row while it "
                "holds the lock)"
            ],
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;",
            ["ACCESS EXCLUSIVE on t (blocks reads and writes)"],
        ),
        ('DROP TABLE IF EXISTS "T";', ["ACCESS EXCLUSIVE on T (blocks reads and writes)"]),
        ("TRUNCATE t;", ["ACCESS EXCLUSIVE on t (blocks reads and writes)"]),
        (
            "DROP TRIGGER IF EXISTS g ON t;",
            ["ACCESS EXCLUSIVE on t (blocks reads and writes)"],
        ),
        (
            "LOCK TABLE t IN share row exclusive MODE;",
            ["SHARE ROW EXCLUSIVE on t (blocks writes)"],
        ),
        ("LOCK t IN EXCLUSIVE MODE;", ["EXCLUSIVE on t (blocks writes and most reads)"]),
        (
            "DELETE FROM t WHERE a; INSERT INTO u VALUES (1);",
            [
                "ROW EXCLUSIVE on t (blocks no reads or writes; row locks on the rows it changes)",
                "ROW EXCLUSIVE on u (blocks no reads or writes; row locks on the rows it changes)",
            ],
        ),
        (
            "DO $$ BEGIN UPDATE t SET a = 1; COMMIT; UPDATE t SET a = 2; END $$;",
            ["ROW EXCLUSIVE on t (blocks no reads or writes; row locks on the rows it changes)"],
        ),
        (
            "COMMENT ON TABLE t IS 'DROP TABLE x';",
            [
                "SHARE UPDATE EXCLUSIVE on t (blocks no reads or writes, only schema changes "
                "and VACUUM)",
                "ACCESS EXCLUSIVE on x (blocks reads and writes)",
            ],
        ),
    ],
)
def test_locks_are_read_from_the_statement(statement: str, locks: list[str]) -> None:
    """(A comment's text that reads like a command is taken for one: a plan errs on
    the side of showing a lock.)"""
    assert statement_locks(statement) == locks
