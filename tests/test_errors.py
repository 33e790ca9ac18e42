"""The error contract, provoked for real: every failure is a ValidationError raised
before any SQL, or a DataAccessError whose __cause__ is the driver's exception,
and a caught DataAccessError leaves the caller's transaction usable."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import ValidationError

from customer_dal import (
    CustomerRepository,
    DataAccessError,
    DatabaseUnavailableError,
    DuplicatePhoneError,
    PermissionDeniedError,
    QueryTimeoutError,
    ReadOnlyDatabaseError,
    SchemaNotReadyError,
    TransactionConflictError,
    connect,
    migrate,
)
from customer_dal.errors import translate

from .flavours import Flavour, each_flavour  # noqa: F401 - each test runs once per flavour
from .locks import row_locked, table_locked
from .servers import DedicatedServer, dedicated_server  # noqa: F401 - the fixture

_roles = itertools.count()
ANN = {"name": "Ann Lee", "phone": "555-123-4567"}


def _dbname(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.info.dbname


@contextmanager
def _role_setting(dsn: str, setting: str, value: str) -> Iterator[None]:
    """``ALTER ROLE <current user> IN DATABASE <this test's> SET setting = value``."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        role_and_db = sql.SQL("ROLE {} IN DATABASE {}").format(
            sql.Identifier(admin.info.user), sql.Identifier(admin.info.dbname)
        )
        admin.execute(
            sql.SQL("ALTER {} SET {} = {}").format(
                role_and_db, sql.Identifier(setting), sql.Literal(value)
            )
        )
        try:
            yield
        finally:
            admin.execute(sql.SQL("ALTER {} RESET {}").format(role_and_db, sql.Identifier(setting)))


@pytest.fixture
def timeout_dsn(dsn: str) -> Iterator[str]:
    """The test database, where this role's statements give up waiting after 200 ms."""
    with _role_setting(dsn, "lock_timeout", "200ms"):
        yield dsn


# Each repository call, ready to run; the ones that write get a customer to write.
CALLS: dict[str, Callable[[CustomerRepository, int], object]] = {
    "create": lambda repo, _: repo.create({"name": "Bo", "phone": "555-999-0000"}),
    "get": lambda repo, cid: repo.get(cid),
    "get_by_phone": lambda repo, _: repo.get_by_phone("555-123-4567"),
    "search": lambda repo, _: repo.search("ann"),
    "list": lambda repo, _: repo.list(),
    "update": lambda repo, cid: repo.update(cid, {"notes": "x"}),
    "soft_delete": lambda repo, cid: repo.soft_delete(cid),
    "restore": lambda repo, cid: repo.restore(cid),
    "count_active": lambda repo, _: repo.count_active(),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_lock_timeout_is_a_query_timeout_and_the_callers_transaction_survives(
    timeout_dsn: str, call: str, flavour: Flavour
) -> None:
    with flavour.psycopg_connect(timeout_dsn, autocommit=True) as conn:
        repo, users = flavour.customers(conn), flavour.users(conn)
        ann = repo.create(ANN)
        with conn.transaction():
            clerk = users.create("Clerk Kent")  # touches users only: customers can be locked
            with table_locked(timeout_dsn), pytest.raises(QueryTimeoutError) as caught:
                CALLS[call](repo, ann.id)
            assert caught.value.setting == "lock_timeout"
            assert "lock_timeout" in str(caught.value)
            assert isinstance(caught.value.__cause__, psycopg.errors.LockNotAvailable)
            # the caller's transaction is usable, and keeps what it did before
            assert users.get(clerk.id) == clerk
            assert repo.get(ann.id) is not None
        assert users.get(clerk.id) == clerk


def test_a_statement_timeout_says_so(dsn: str, flavour: Flavour) -> None:
    with _role_setting(dsn, "statement_timeout", "200ms"), flavour.connect(dsn) as conn:
        repo = flavour.customers(conn)
        with table_locked(dsn), pytest.raises(QueryTimeoutError) as caught:
            repo.get(1)
    assert caught.value.setting == "statement_timeout"
    assert "statement_timeout" in str(caught.value)
    assert isinstance(caught.value.__cause__, psycopg.errors.QueryCanceled)


def test_a_terminated_backend_is_database_unavailable_and_the_next_connection_works(
    dsn: str,
    flavour: Flavour,
) -> None:
    conn = flavour.connect(dsn)
    repo = flavour.customers(conn)
    ann = repo.create(ANN)
    _terminate(dsn, conn.info.backend_pid)
    with pytest.raises(DatabaseUnavailableError, match="nothing was changed") as caught:
        repo.get(ann.id)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert conn.closed  # the broken connection was closed for the caller
    with pytest.raises(DatabaseUnavailableError):
        repo.get(ann.id)  # and says so again, without a raw driver error
    with flavour.connect(dsn) as again:
        assert flavour.customers(again).get(ann.id) == ann


def test_a_write_cut_off_mid_call_says_its_outcome_is_unknown(dsn: str, flavour: Flavour) -> None:
    conn = flavour.connect(dsn)
    repo = flavour.customers(conn)
    ann = repo.create(ANN)
    pid = conn.info.backend_pid
    # The update waits for the row lock; its backend is terminated meanwhile.
    with (
        row_locked(dsn, ann.id, then=lambda: _terminate(dsn, pid)),
        pytest.raises(DatabaseUnavailableError, match="outcome of the write is unknown"),
    ):
        repo.update(ann.id, {"notes": "lost?"})


def test_a_connection_lost_inside_a_transaction_says_nothing_was_committed(
    dsn: str, flavour: Flavour
) -> None:
    conn = flavour.connect(dsn)
    repo = flavour.customers(conn)
    with (  # noqa: PT012 - the transaction block is what is being tested
        pytest.raises(DatabaseUnavailableError, match="nothing in it was committed"),
        conn.transaction(),
    ):
        repo.create(ANN)
        _terminate(dsn, conn.info.backend_pid)
        repo.create({"name": "Bo", "phone": "555-999-0000"})
    with flavour.connect(dsn) as again:
        assert flavour.customers(again).count_active() == 0


def test_without_autocommit_a_lost_connection_is_database_unavailable(
    dsn: str, flavour: Flavour
) -> None:
    conn = flavour.psycopg_connect(dsn)
    _terminate(dsn, conn.info.backend_pid)
    with pytest.raises(DatabaseUnavailableError, match="nothing in it was committed"):
        flavour.customers(conn).create(ANN)
    assert conn.closed


def test_without_autocommit_a_write_cut_off_mid_call_lost_nothing_committed(
    dsn: str, flavour: Flavour
) -> None:
    with flavour.connect(dsn) as setup:
        ann = flavour.customers(setup).create(ANN)
    conn = flavour.psycopg_connect(dsn)
    pid = conn.info.backend_pid
    with (
        row_locked(dsn, ann.id, then=lambda: _terminate(dsn, pid)),
        pytest.raises(DatabaseUnavailableError, match="nothing in it was committed"),
    ):
        flavour.customers(conn).update(ann.id, {"notes": "lost"})
    assert conn.closed


def test_a_refused_connection_is_database_unavailable() -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect("host=127.0.0.1 port=1 connect_timeout=5")
    error = translate(caught.value, None)
    assert isinstance(error, DatabaseUnavailableError)
    assert "lost the connection to the database: nothing was changed" in str(error)


@pytest.fixture(scope="module")
def restartable_dsn(dedicated_server: DedicatedServer) -> str:  # noqa: F811
    """A migrated database on a server of this module's own, which tests restart."""
    migrate(dedicated_server.dsn)
    return dedicated_server.dsn


@pytest.mark.slow
def test_a_server_restart_is_database_unavailable_and_reconnecting_works(
    dedicated_server: DedicatedServer,  # noqa: F811
    restartable_dsn: str,
    flavour: Flavour,
) -> None:
    conn = flavour.connect(restartable_dsn)
    repo = flavour.customers(conn)
    ann = repo.create({**ANN, "phone": f"555-000-111{flavour.is_async:d}"})  # a run each
    dedicated_server.restart()
    with pytest.raises(DatabaseUnavailableError, match="nothing was changed"):
        repo.get(ann.id)
    assert conn.closed
    with flavour.connect(restartable_dsn) as again:
        assert flavour.customers(again).get(ann.id) == ann


@pytest.mark.slow
def test_a_server_restart_during_a_write_says_its_outcome_is_unknown(
    dedicated_server: DedicatedServer,  # noqa: F811
    restartable_dsn: str,
    flavour: Flavour,
) -> None:
    conn = flavour.connect(restartable_dsn)
    repo = flavour.customers(conn)
    ann = repo.create({**ANN, "phone": f"555-000-222{flavour.is_async:d}"})  # a run each
    with (
        row_locked(restartable_dsn, ann.id, then=dedicated_server.restart),
        pytest.raises(DatabaseUnavailableError, match="outcome of the write is unknown"),
    ):
        repo.update(ann.id, {"notes": "lost?"})
    with flavour.connect(restartable_dsn) as again:
        assert flavour.customers(again).get(ann.id) == ann  # this time, nothing was written


def _terminate(dsn: str, pid: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_read_only_database_refuses_writes_with_its_own_error(dsn: str, flavour: Flavour) -> None:
    with _role_setting(dsn, "default_transaction_read_only", "on"), flavour.connect(dsn) as conn:
        repo = flavour.customers(conn)
        assert repo.count_active() == 0  # reads work
        with pytest.raises(ReadOnlyDatabaseError, match="send writes to the primary") as caught:
            repo.create(ANN)
    assert isinstance(caught.value.__cause__, psycopg.errors.ReadOnlySqlTransaction)


@pytest.fixture
def grantless_dsn(dsn: str) -> Iterator[str]:
    """The test database, as a role that may log in and nothing else."""
    role = f"cdal_nobody_{os.getpid()}_{next(_roles)}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        password = f"pw-{role}"  # a server that asks for one gets it; none is secret here
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        try:
            yield make_conninfo(dsn, user=role, password=password)
        finally:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_missing_privilege_names_the_object(grantless_dsn: str, flavour: Flavour) -> None:
    with flavour.connect(grantless_dsn) as conn:
        with pytest.raises(PermissionDeniedError, match="customers") as caught:
            flavour.customers(conn).get(1)
        assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege)
        with pytest.raises(PermissionDeniedError, match="users"):
            flavour.users(conn).create("Clerk Kent")


@pytest.mark.parametrize("call", CALLS)
def test_a_never_migrated_database_says_to_migrate(
    empty_dsn: str, call: str, flavour: Flavour
) -> None:
    with flavour.connect(empty_dsn) as conn:
        with pytest.raises(SchemaNotReadyError, match=r"is not migrated: run make migrate"):
            CALLS[call](flavour.customers(conn), 1)
        with pytest.raises(SchemaNotReadyError, match=_dbname(empty_dsn)):
            flavour.users(conn).get(1)


def test_a_serialization_failure_says_to_retry(dsn: str, flavour: Flavour) -> None:
    with flavour.connect(dsn) as first, flavour.connect(dsn) as second:
        ann = flavour.customers(first).create(ANN)
        first.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        flavour.customers(first).get(ann.id)  # takes the snapshot
        flavour.customers(second).update(ann.id, {"notes": "theirs"})
        with pytest.raises(TransactionConflictError, match="retry"):
            flavour.customers(first).update(ann.id, {"notes": "mine"})
        first.execute("ROLLBACK")


def test_a_transaction_that_failed_before_the_call_is_named(dsn: str, flavour: Flavour) -> None:
    with flavour.connect(dsn) as conn:
        conn.execute("BEGIN")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
        with pytest.raises(DataAccessError, match="failed earlier"):
            flavour.customers(conn).get(1)


def test_other_driver_errors_still_leave_as_data_access_errors(dsn: str) -> None:
    with connect(dsn) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero) as caught:
            conn.execute("SELECT 1 / 0")
        error = translate(caught.value, conn)
    assert type(error) is DataAccessError
    assert "division by zero" in str(error)
    assert translate(caught.value, None).args[0].startswith("the database:")


# ---- a connection without autocommit: the caller commits -------------------


def test_without_autocommit_calls_join_the_callers_transaction_and_never_commit(
    dsn: str,
    flavour: Flavour,
) -> None:
    with flavour.psycopg_connect(dsn) as conn:  # psycopg's default: not autocommit
        repo = flavour.customers(conn)
        ann = repo.create(ANN)
        assert repo.search("ann") == [ann]
        conn.rollback()
        assert repo.get(ann.id) is None
        assert repo.list().total == 0

        bo = repo.create({"name": "Bo", "phone": "555-999-0000"})
        with pytest.raises(DuplicatePhoneError):
            repo.create({"name": "Bo's twin", "phone": "(555) 999-0000"})
        assert repo.get(bo.id) == bo  # the failure left the transaction usable
        conn.commit()
    with flavour.connect(dsn) as other:
        assert [c.id for c in flavour.customers(other).search("bo")] == [bo.id]


def test_without_autocommit_a_caught_timeout_leaves_the_transaction_usable(
    timeout_dsn: str,
    flavour: Flavour,
) -> None:
    with flavour.psycopg_connect(timeout_dsn) as conn:
        repo, users = flavour.customers(conn), flavour.users(conn)
        ann = repo.create(ANN)
        conn.commit()
        with pytest.raises(DuplicatePhoneError):  # the first call of a new transaction
            repo.create({"name": "Ann's twin", "phone": "(555) 123-4567"})
        clerk = users.create("Clerk Kent")
        with row_locked(timeout_dsn, ann.id), pytest.raises(QueryTimeoutError):
            repo.soft_delete(ann.id)
        repo.update(ann.id, {"notes": "mine"})
        conn.commit()
    with flavour.connect(timeout_dsn) as other:
        found = flavour.customers(other).get(ann.id)
        assert flavour.users(other).get(clerk.id) == clerk
    assert found is not None
    assert (found.notes, found.is_active) == ("mine", True)


SEARCH_SETTINGS = [  # what search's SET LOCALs change (sql/customers.sql)
    "plan_cache_mode",
    "jit",
    "max_parallel_workers_per_gather",
    "enable_seqscan",
    "enable_sort",
    "search_path",
]


# Text read in name order (the rest tier), and a phone fragment collected and sorted (digits).
@pytest.mark.parametrize("query", ["ann", "zz-no-match-zz", "555-1234"])
def test_a_search_changes_no_setting_of_the_callers_transaction(
    dsn: str, query: str, flavour: Flavour
) -> None:
    with flavour.psycopg_connect(dsn) as conn:
        flavour.customers(conn).create({"name": "Ann Lee", "phone": "555-123-4567"})
        flavour.customers(conn).search(query)
        changed = conn.execute(
            "SELECT name FROM pg_settings WHERE name = ANY(%s) AND setting <> reset_val",
            [SEARCH_SETTINGS],
        ).fetchall()
        assert changed == []


@pytest.mark.parametrize("query", ["ann", "zz-no-match-zz", "555-1234"])
def test_a_search_on_an_autocommit_connection_keeps_its_prepared_statements(
    dsn: str, query: str, flavour: Flavour
) -> None:
    """Its SET LOCALs end with its implicit transaction, which commits: a rollback would
    make psycopg deallocate every prepared statement of the connection, and the next
    get would be planned anew."""
    with flavour.connect(dsn) as conn:
        customers = flavour.customers(conn)
        ann = customers.create({"name": "Ann Lee", "phone": "555-123-4567"})
        for _ in range(6):  # psycopg prepares a statement on its fifth run
            customers.get(ann.id)
        prepared = "SELECT name FROM pg_prepared_statements ORDER BY name"
        before = conn.execute(prepared).fetchall()
        customers.search(query)
        assert conn.execute(prepared).fetchall() == before != []
        changed = conn.execute(
            "SELECT name FROM pg_settings WHERE name = ANY(%s) AND setting <> reset_val",
            [SEARCH_SETTINGS],
        ).fetchall()
        assert changed == []


# ---- bad arguments: ValidationError before any SQL --------------------------

BIG = 2**63
BAD_CALLS: dict[str, Callable[[CustomerRepository], object]] = {
    "get('abc')": lambda r: r.get("abc"),  # type: ignore[arg-type]
    "get('1')": lambda r: r.get("1"),  # type: ignore[arg-type]
    "get(True)": lambda r: r.get(True),
    "get(1.0)": lambda r: r.get(1.0),  # type: ignore[arg-type]
    "get(None)": lambda r: r.get(None),  # type: ignore[arg-type]
    "get(2**63)": lambda r: r.get(BIG),
    "get(-2**63-1)": lambda r: r.get(-BIG - 1),
    "get(include_inactive='yes')": lambda r: r.get(1, include_inactive="yes"),  # type: ignore[arg-type]
    "get_by_phone(5551234567)": lambda r: r.get_by_phone(5551234567),  # type: ignore[arg-type]
    "create(created_by_id=2**63)": lambda r: r.create(ANN, created_by_id=BIG),
    "create(created_by_id='1')": lambda r: r.create(ANN, created_by_id="1"),  # type: ignore[arg-type]
    "update('1')": lambda r: r.update("1", {"notes": "x"}),  # type: ignore[arg-type]
    "update(2**63)": lambda r: r.update(BIG, {"notes": "x"}),
    "soft_delete(True)": lambda r: r.soft_delete(True),
    "soft_delete(2**63)": lambda r: r.soft_delete(BIG),
    "restore('7')": lambda r: r.restore("7"),  # type: ignore[arg-type]
    "restore(2**64)": lambda r: r.restore(2**64),
    "search(offset=2**63)": lambda r: r.search("ann", offset=BIG),
    "search(offset=-1)": lambda r: r.search("ann", offset=-1),
    "search(limit='5')": lambda r: r.search("ann", limit="5"),  # type: ignore[arg-type]
    "search(limit=101)": lambda r: r.search("ann", limit=101),
    "search(include_inactive=1)": lambda r: r.search("ann", include_inactive=1),  # type: ignore[arg-type]
    "list(page=2**62)": lambda r: r.list(page=2**62),
    "list(page=0)": lambda r: r.list(page=0),
    "list(page='2')": lambda r: r.list(page="2"),  # type: ignore[arg-type]
    "list(per_page=1000)": lambda r: r.list(per_page=1000),
    "list(include_inactive='no')": lambda r: r.list(include_inactive="no"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("call", BAD_CALLS)
def test_bad_arguments_are_refused_before_any_sql(dsn: str, call: str, flavour: Flavour) -> None:
    conn = flavour.connect(dsn)
    repo = flavour.customers(conn)
    conn.close()  # any SQL would now fail with DatabaseUnavailableError
    with pytest.raises(ValidationError):
        BAD_CALLS[call](repo)


def test_a_bad_user_id_is_refused_before_any_sql(dsn: str, flavour: Flavour) -> None:
    conn = flavour.connect(dsn)
    users = flavour.users(conn)
    conn.close()
    with pytest.raises(ValidationError, match="user_id"):
        users.get("1")  # type: ignore[arg-type]


def test_the_biggest_bigint_is_an_id_like_any_other(customers: CustomerRepository) -> None:
    assert customers.get(BIG - 1) is None
    assert customers.get(-BIG) is None
    assert customers.list(page=BIG // 100 // 100).customers == []
