"""Load the named queries of ``sql/*.sql``, once, and hand them out as trusted text.

A file holds queries in aiosql's shape: a ``-- name: NAME`` line, comment lines
saying what the query does, then the SQL up to the next ``-- name:`` line::

    -- name: get
    -- One customer by id.
    SELECT ... WHERE id = %(id)s;

The text is passed to psycopg unchanged: its ``%(name)s`` placeholders carry
every value, so nothing is ever formatted into SQL at run time. The
repositories run it through :func:`customer_dal.calls.execute`, which logs to
:data:`log`.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from itertools import takewhile
from typing import LiteralString

from .resources import sql_directory

__all__ = ["Query", "load_queries", "log"]

# DEBUG: each query's name, duration and row count; never its parameters
# (they are customers' personal data).
log = logging.getLogger("customer_dal.queries")

_NAME_LINE = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Query:
    name: str
    doc: str
    sql: LiteralString


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
        queries[match["name"]] = Query(
            name=match["name"],
            doc=" ".join(line.removeprefix("--").strip() for line in doc_lines),
            # LiteralString: trusted text from our own file, never user input.
            sql="\n".join(sql_lines).strip().removesuffix(";"),
        )
    return queries
