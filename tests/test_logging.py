"""Observability: DEBUG lines name each query with its duration and row count,
never its parameters; silent unless the application configures logging."""

from __future__ import annotations

import logging
import re

import pytest

from customer_dal import CustomerRepository, UserRepository

from .flavours import each_flavour  # noqa: F401 - each test runs once per flavour


def test_each_query_is_logged_by_name_duration_and_rows_without_values(
    customers: CustomerRepository, users: UserRepository, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="customer_dal"):
        clerk = users.create("Clerk Kent", "kent@example.com")
        ann = customers.create({"name": "Ann Secret", "phone": "555-123-4567"}, clerk.id)
        customers.search("Secret")
        customers.search("nobody by that name")  # in a pipeline too, with no rows
        customers.get(ann.id)
    lines = [record.getMessage() for record in caplog.records]
    assert all(record.name == "customer_dal.queries" for record in caplog.records)
    names = [line.split(":")[0] for line in lines]
    assert names[:2] == ["create", "create"]
    assert {"search_settings", "search", "get"} <= set(names)
    assert all(re.fullmatch(r"[a-z_]+: \d+\.\d\d ms, \d+ rows", line) for line in lines)
    # search and its settings share a pipeline: each line still has its own rows.
    lines_without_time = {_without_time(line) for line in lines}
    assert {"search_settings: 1 rows", "search: 1 rows", "search: 0 rows"} <= lines_without_time
    assert not any(secret in "\n".join(lines) for secret in ("Secret", "555", "kent@"))


def _without_time(line: str) -> str:
    return re.sub(r" \d+\.\d\d ms,", "", line)


def test_nothing_is_logged_unless_asked(
    customers: CustomerRepository, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="customer_dal"):
        customers.create({"name": "Ann", "phone": "555-123-4567"})
    assert caplog.records == []
