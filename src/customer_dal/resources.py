"""Where the shipped SQL lives: ``sql/`` and ``migrations/``.

Both sit at the top of the repository, where a DBA looks for them. The package
directory holds symlinks to them: in a source checkout they lead back to the
top level, and the wheel build follows them, so an installed package carries
real copies at the same place. One lookup serves both.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["migrations_directory", "sql_directory"]

_PACKAGE = Path(__file__).resolve().parent


def sql_directory() -> Path:
    return _PACKAGE / "sql"


def migrations_directory() -> Path:
    return _PACKAGE / "migrations"
