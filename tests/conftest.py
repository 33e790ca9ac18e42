"""Fixtures: a real PostgreSQL (embedded, or DATABASE_URL when set), a migrated
template database made once per session, and a cheap clone of it per test."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from pytest_postgresql.janitor import DatabaseJanitor

from customer_dal import migrate, resolve_dsn
from customer_dal.db import with_database

from .flavours import SYNC, Flavour, loop_thread  # noqa: F401 - loop_thread: a fixture

_names = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _ctrl_c_raises_keyboard_interrupt() -> None:
    """Tests send Ctrl-C (SIGINT) to this process and to the CLI processes it starts.

    A shell that starts the suite in the background (``nohup make test &``, many CI
    runners) sets SIGINT to be ignored, and Python then installs no handler: Ctrl-C
    raises nothing, and a test waiting for it waits for ever (a COPY of 2,000,000
    rows into a server that takes a second per row). The children inherit the
    ignoring. A handler of Python's own is reset to the default in a child, so
    installing it here fixes both.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def server_dsn() -> str:
    """The server under test: DATABASE_URL, else the embedded one (started on demand)."""
    return resolve_dsn()


def _janitor(server_dsn: str, dbname: str, **kwargs: Any) -> DatabaseJanitor:
    params = conninfo_to_dict(server_dsn)
    return DatabaseJanitor(
        user=params.get("user") or os.environ.get("PGUSER") or "postgres",
        password=params.get("password"),
        host=params.get("host") or "localhost",
        port=params.get("port") or 5432,
        maintenance_dbname=params.get("dbname") or "postgres",
        dbname=dbname,
        connection_timeout=10,
        **kwargs,
    )


@pytest.fixture(scope="session")
def template_dbname(server_dsn: str) -> Iterator[str]:
    """A database migrated once, then cloned (CREATE DATABASE ... TEMPLATE) for each test."""
    name = f"cdal_template_{os.getpid()}"
    janitor = _janitor(server_dsn, name)
    janitor.drop()
    janitor.init()
    migrate(with_database(server_dsn, name))
    yield name
    janitor.drop()


def fresh_database(server_dsn: str, template: str | None) -> Iterator[str]:
    """Create a database (a clone of ``template`` when given); yield its DSN; drop it."""
    name = f"cdal_test_{os.getpid()}_{next(_names)}"
    janitor = _janitor(server_dsn, name, template_dbname=template)
    janitor.init()
    try:
        yield with_database(server_dsn, name)
    finally:
        janitor.drop()


@pytest.fixture
def dsn(server_dsn: str, template_dbname: str) -> Iterator[str]:
    """A freshly migrated database of this test's own."""
    yield from fresh_database(server_dsn, template_dbname)


@pytest.fixture
def empty_dsn(server_dsn: str) -> Iterator[str]:
    """A database of this test's own that has never been migrated."""
    yield from fresh_database(server_dsn, None)


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test's migrated database, for checking with raw SQL."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def flavour() -> Flavour:
    """The sync API. A module that tests both flavours imports tests.flavours.each_flavour."""
    return SYNC


@pytest.fixture
def repo_conn(flavour: Flavour, conn: psycopg.Connection[Any], dsn: str) -> Iterator[Any]:
    """The autocommit connection the ``customers`` and ``users`` repositories run on:
    ``conn`` itself for the sync API, an AsyncConnection (driven by tests.flavours.Blocking)
    for the async one. Open transactions around repository calls on this one."""
    if not flavour.is_async:
        yield conn
        return
    with flavour.psycopg_connect(dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture
def customers(flavour: Flavour, repo_conn: Any) -> Any:
    """A CustomerRepository, or an AsyncCustomerRepository whose methods block."""
    return flavour.customers(repo_conn)


@pytest.fixture
def users(flavour: Flavour, repo_conn: Any) -> Any:
    """A UserRepository, or an AsyncUserRepository whose methods block."""
    return flavour.users(repo_conn)
