"""The migrations this checkout ships, for tests that name them.

Tests derive names from here, so shipping a new migration changes no test:
``NEXT`` is the number the next migration would take (what a newer checkout
has, or a test's own extra migration).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from customer_dal import MigrationState
from customer_dal.migrations import State
from customer_dal.resources import migrations_directory

SHIPPED = sorted(
    path.name.removesuffix(".sql")
    for path in migrations_directory().glob("[0-9][0-9][0-9][0-9]_*.sql")
    if not path.name.endswith(".rollback.sql")
)
LATEST = SHIPPED[-1]
NEXT = f"{int(LATEST[:4]) + 1:04d}"


def states(state: State, ids: list[str] = SHIPPED) -> list[MigrationState]:
    return [MigrationState(migration_id, state) for migration_id in ids]


def status_lines(state: State, ids: list[str] = SHIPPED) -> str:
    """What ``customer-dal status`` prints when every migration is in ``state``."""
    return "".join(f"{state:<8} {migration_id}\n" for migration_id in ids)


def checkout_up_to(directory: Path, last: str) -> Path:
    """A migrations directory as a checkout whose newest migration was ``last`` had it."""
    directory.mkdir()
    for migration_id in SHIPPED[: SHIPPED.index(last) + 1]:
        for suffix in (".sql", ".rollback.sql"):
            shutil.copy(migrations_directory() / f"{migration_id}{suffix}", directory)
    return directory
