"""The README's usage example runs as written."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import psycopg
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_examples() -> str:
    """Every python block, in order, as one program (blocks in lists are indented)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert blocks
    return "\n".join(textwrap.dedent(block) for block in blocks)


def test_the_first_lines_are_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert lines[3].startswith("make migrate")
    assert lines[4].startswith("make test")


def test_the_usage_example_runs(empty_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_dsn)
    namespace: dict[str, object] = {}
    exec(compile(_python_examples(), str(README), "exec"), namespace)  # noqa: S102
    conn = namespace["conn"]
    assert isinstance(conn, psycopg.Connection)
    rows = conn.execute("SELECT is_active, notes, email FROM customers ORDER BY id").fetchall()
    assert rows == [
        (False, "prefers e-mail", "ann@example.com"),
        (True, "[called back]", None),
        (True, None, None),  # Bob, from the read replicas section
    ]
    conn.close()
