"""Where the shipped SQL lives: ``sql/`` and ``migrations/``.

Both sit at the top of the repository, where a DBA looks for them; the wheel
carries them inside the package (see ``force-include`` in pyproject.toml). In a
source checkout the package directory holds symlinks to them, so one lookup
serves both.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["migrations_directory", "sql_directory"]

_PACKAGE = Path(__file__).resolve().parent


def sql_directory() -> Path:
    return _PACKAGE / "sql"


def migrations_directory() -> Path:
    return _PACKAGE / "migrations"
