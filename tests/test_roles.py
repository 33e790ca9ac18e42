"""sql/roles.sql, as a DBA runs it with psql: an owner that migrates without being a
superuser, an app role that runs every call of the library (import and export too)
with TEMP and schema public revoked from PUBLIC but can neither DELETE nor create a
table, and a readonly role that reads and runs ``status`` (on a hot standby too)."""

from __future__ import annotations

import itertools
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from customer_dal import CustomerRepository, UserRepository, migrate, migration_status
from customer_dal.bulk import ImportRejectedError, bulk_import
from customer_dal.csv_io import export_csv
from customer_dal.db import with_database
from customer_dal.embedded import psql_executable

from .servers import ReplicaPair, replica_pair  # noqa: F401 - the fixture
from .shipped import states

APPLIED = states("applied")

ROLES_SQL = Path(__file__).resolve().parents[1] / "sql" / "roles.sql"

_names = itertools.count()


@dataclass(frozen=True)
class Roles:
    """The database (as the superuser) and a DSN per role, each logging in as itself."""

    names: dict[str, str]
    admin: str
    owner: str
    app: str
    readonly: str


def _run_roles_sql(dsn: str, names: dict[str, str]) -> None:
    variables = [arg for kind, name in names.items() for arg in ("-v", f"{kind}={name}")]
    subprocess.run(
        [psql_executable(), "-X", "-q", *variables, "-d", dsn, "-f", str(ROLES_SQL)],
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextmanager
def least_privilege(server_dsn: str) -> Iterator[Roles]:
    """A new database hardened as a DBA would (no TEMP, no schema public for PUBLIC),
    roles.sql run twice, LOGIN and passwords given by hand; drop it all on exit."""
    tag = f"{os.getpid()}_{next(_names)}"
    dbname = f"cdal_roles_{tag}"
    names = {kind: f"cdal_{kind}_{tag}" for kind in ("owner", "app", "readonly")}
    database = sql.Identifier(dbname)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(database))
    admin_dsn = with_database(server_dsn, dbname)
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("REVOKE TEMP ON DATABASE {} FROM PUBLIC").format(database))
            admin.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        _run_roles_sql(admin_dsn, names)
        _run_roles_sql(admin_dsn, names)  # idempotent
        dsns = {}
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            for kind, role in names.items():
                [(can_log_in,)] = admin.execute(
                    "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [role]
                ).fetchall()
                assert can_log_in is False  # roles.sql creates no login
                password = secrets.token_hex(16)
                admin.execute(
                    sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
                dsns[kind] = make_conninfo(admin_dsn, user=role, password=password)
        yield Roles(names, admin_dsn, **dsns)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
            for role in names.values():
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def roles(server_dsn: str) -> Iterator[Roles]:
    with least_privilege(server_dsn) as made:
        migrate(made.owner)
        yield made


def _as(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True)


def test_the_owner_migrates_without_being_a_superuser(roles: Roles) -> None:
    with _as(roles.admin) as admin:
        owners = admin.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE nspname IN ('public', 'customer_dal_migrations')"
        ).fetchall()
        [(superuser,)] = admin.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = %s",
            [owners[0][0]],
        ).fetchall()
    assert len(owners) == 1
    assert superuser is False
    assert migration_status(roles.owner) == APPLIED
    _run_roles_sql(roles.admin, roles.names)  # after a migration too


def test_the_app_role_runs_every_call(roles: Roles, tmp_path: Path) -> None:
    with _as(roles.app) as conn:
        users = UserRepository(conn)
        clerk = users.create("Clerk Kent", "clerk@example.com")
        assert users.get(clerk.id) == clerk
        customers = CustomerRepository(conn)
        ann = customers.create(
            {"name": "Ann Lee", "phone": "555-000-0001", "email": "ann@example.com"},
            created_by_id=clerk.id,
        )
        assert customers.get(ann.id) == ann
        assert customers.get_by_phone("(555) 000-0001") == ann
        assert [found.id for found in customers.search("ann")] == [ann.id]
        assert customers.list().total == 1
        updated = customers.update(ann.id, {"notes": "prefers e-mail"})
        assert updated is not None
        assert updated.notes == "prefers e-mail"
        assert customers.soft_delete(ann.id)
        assert customers.count_active() == 0
        assert customers.restore(ann.id) is not None
        assert customers.count_active() == 1

        batch = [
            (2, {"name": "Bob", "phone": "555-000-0002"}),
            (3, {"name": "", "phone": "1"}),
            (4, {"name": "Ann again", "phone": "5550000001"}),
        ]
        refused: list[int] = []
        with pytest.raises(ImportRejectedError):
            bulk_import(conn, lambda: batch, on_reject=lambda r: refused.append(r.line))
        assert refused == [3, 4]
        assert customers.count_active() == 1
        result = bulk_import(conn, lambda: batch, skip_invalid=True, created_by_id=clerk.id)
        assert (result.imported, result.rejected) == (1, 2)
        assert customers.count_active() == 2

        assert export_csv(conn, tmp_path / "out.csv") == 2
        assert (tmp_path / "out.csv").read_text().startswith("name,phone")


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM customers",
        "TRUNCATE customers",
        "CREATE TABLE mine (id int)",
        "CREATE TEMPORARY TABLE mine (id int)",
        "ALTER TABLE customers ADD COLUMN mine int",
    ],
)
def test_the_app_role_cannot_delete_or_change_the_schema(roles: Roles, statement: str) -> None:
    with _as(roles.app) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_readonly_role_reads_and_runs_status(roles: Roles) -> None:
    with _as(roles.app) as conn:
        CustomerRepository(conn).create({"name": "Ann Lee", "phone": "555-000-0001"})
    assert migration_status(roles.readonly) == APPLIED
    with _as(roles.readonly) as conn:
        assert CustomerRepository(conn).count_active() == 1
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE customers SET notes = 'x'")


def test_the_readonly_role_runs_status_on_the_standby(
    replica_pair: ReplicaPair,  # noqa: F811
) -> None:
    with least_privilege(replica_pair.primary_dsn) as made:
        migrate(made.owner)
        replica_pair.wait_for_replay()
        readonly = conninfo_to_dict(made.readonly)
        on_standby = make_conninfo(
            replica_pair.replica_dsn,
            dbname=readonly["dbname"],
            user=readonly["user"],
            password=readonly["password"],
        )
        assert migration_status(on_standby) == APPLIED


def test_a_database_owner_without_roles_sql_migrates_and_pg_trgm_stays_in_public(
    server_dsn: str,
) -> None:
    """Without roles.sql, an owner that is no superuser creates pg_trgm itself (trusted)
    but cannot move it out of public: migration 0005 leaves it there and goes on."""
    tag = f"{os.getpid()}_{next(_names)}"
    dbname, role, password = f"cdal_plain_{tag}", f"cdal_plain_owner_{tag}", secrets.token_hex(16)
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(dbname), sql.Identifier(role)
            )
        )
    owner_dsn = make_conninfo(with_database(server_dsn, dbname), user=role, password=password)
    try:
        migrate(owner_dsn)
        with _as(owner_dsn) as conn:
            [(schema,)] = conn.execute(
                "SELECT extnamespace::regnamespace::text FROM pg_extension "
                "WHERE extname = 'pg_trgm'"
            ).fetchall()
            assert schema == "public"
            customers = CustomerRepository(conn)
            ann = customers.create({"name": "Ann Lee", "phone": "555-123-4567"})
            assert customers.search("ann") == [ann]
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
