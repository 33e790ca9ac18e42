"""Load the named queries of ``sql/*.sql``, once, and hand them out as trusted text.

A file holds queries in aiosql's shape: a ``-- name: NAME`` line, comment lines
saying what the query does, then the SQL up to the next ``-- name:`` line::

    -- name: get
    -- One customer by id.
    SELECT ... WHERE id = %(id)s;

Its ``%(name)s`` placeholders carry every value, so nothing is ever formatted
into SQL at run time. The repositories run it through
:func:`customer_dal.calls.execute`, which logs to :data:`log`, on psycopg's raw
cursors: each placeholder is turned into PostgreSQL's own (``$1``, ``$2``, ...)
once, here, because psycopg would parse the text again at every call for a
statement longer than its cache takes (4 KB; search is twice that).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import takewhile
from typing import Any, LiteralString

from .resources import sql_directory

__all__ = ["Query", "load_queries", "log"]

# DEBUG: each query's name, duration and row count; never its parameters
# (they are customers' personal data).
log = logging.getLogger("customer_dal.queries")

_NAME_LINE = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
# psycopg's placeholders: %(name)s, and %% for a literal %.
_PLACEHOLDER = re.compile(r"%\((?P<name>[a-z_][a-z0-9_]*)\)s|%%")


@dataclass(frozen=True)
class Query:
    name: str
    doc: str
    sql: LiteralString
    # sql with PostgreSQL's placeholders, for a raw cursor: $n is names[n - 1].
    native_sql: LiteralString
    names: tuple[str, ...]

    def values(self, params: Mapping[str, Any] | None) -> list[Any] | None:
        """``params`` in the order of ``native_sql``'s placeholders."""
        return None if params is None else [params[name] for name in self.names]


def _native(sql: LiteralString) -> tuple[LiteralString, tuple[str, ...]]:
    """``sql`` with each ``%(name)s`` as ``$n`` (one number per name), and the names."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match["name"]
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql), tuple(names)


@functools.cache
def load_queries(filename: str) -> dict[str, Query]:
    """The queries of ``sql/<filename>``, by name; read from disk on first use only."""
    text = (sql_directory() / filename).read_text(encoding="utf-8")
    starts = list(_NAME_LINE.finditer(text))
    queries: dict[str, Query] = {}
    for match, following in zip(starts, [*starts[1:], None], strict=True):
        body = text[match.end() : following.start() if following else len(text)]
        lines = body.strip().splitlines()
        doc_lines = list(takewhile(lambda line: line.startswith("--"), lines))
        sql_lines = lines[len(doc_lines) :]
        # LiteralString: trusted text from our own file, never user input.
        sql = "\n".join(sql_lines).strip().removesuffix(";")
        native_sql, names = _native(sql)
        queries[match["name"]] = Query(
            name=match["name"],
            doc=" ".join(line.removeprefix("--").strip() for line in doc_lines),
            sql=sql,
            native_sql=native_sql,
            names=names,
        )
    return queries
