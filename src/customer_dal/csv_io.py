"""Customers to and from CSV files: the file side of ``import`` and ``export``.

A file has a header row. ``name`` and ``phone`` are required columns;
``phone_secondary``, ``email``, ``address``, ``notes`` and ``is_active`` are
optional; other columns are ignored. Files are UTF-8 (a byte-order mark is
fine). A problem with the file itself (missing, a directory, unreadable, not
UTF-8, a broken quote, a field over the CSV module's 128 KiB limit, a missing
required column) is a :class:`CsvFileError`: the batch is rolled back and
nothing is written. An export appears under its name only once complete.
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg

from .errors import DataAccessError, translate
from .queries import Query, load_queries

__all__ = [
    "CSV_COLUMNS",
    "CsvFileError",
    "RejectsFile",
    "check_export_target",
    "check_readable",
    "export_csv",
    "read_customer_rows",
]

CSV_COLUMNS = ("name", "phone", "phone_secondary", "email", "address", "notes", "is_active")
REQUIRED_COLUMNS = ("name", "phone")


class CsvFileError(DataAccessError):
    """The file cannot be read or written as a customers CSV; nothing was written."""


def check_readable(path: Path) -> None:
    """Raise :class:`CsvFileError` now, before any database work, if the file or its
    header cannot be imported."""
    for _ in read_customer_rows(path):
        break


def read_customer_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, values)`` for each data row; ``line`` is where the row starts."""
    line = 1
    try:
        _refuse_special_files(path)
        with path.open(encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file, strict=True)
            header = [column.strip().lower() for column in next(reader, [])]
            missing = [column for column in REQUIRED_COLUMNS if column not in header]
            if missing:
                raise CsvFileError(
                    f"{path.name}: the header lacks the required column(s) {', '.join(missing)}"
                )
            wanted = [
                (index, column) for index, column in enumerate(header) if column in CSV_COLUMNS
            ]
            line = reader.line_num + 1
            for record in reader:
                if any(record):  # skip blank lines
                    yield (
                        line,
                        {
                            column: record[index] if index < len(record) else None
                            for index, column in wanted
                        },
                    )
                line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            f"{path.name} is not UTF-8 (byte {exc.start} of a chunk near line {line}); "
            "save it as UTF-8 and retry"
        ) from exc
    except csv.Error as exc:
        raise CsvFileError(f"{path.name}, line {line}: {exc}") from exc
    except OSError as exc:
        raise CsvFileError(f"cannot read {path}: {_reason(exc)}") from exc


def _refuse_special_files(path: Path) -> None:
    """Import reads its file twice (see bulk_import): a pipe or a device would block or
    come back empty the second time, so only regular files will do."""
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise CsvFileError(f"cannot read {path}: it is a directory, not a CSV file")
    if not stat.S_ISREG(mode):
        raise CsvFileError(
            f"cannot read {path}: not a regular file (import reads its file twice, "
            "which a pipe or a device cannot do)"
        )


def _reason(exc: OSError) -> str:
    """``no such file or directory``: the operating system's reason, as part of a sentence."""
    return (exc.strerror or str(exc)).lower()


class RejectsFile:
    """``FILE.rejects.csv``: the refused rows as they were read, plus a reason column."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file = path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise CsvFileError(f"cannot write the rejects file {path}: {_reason(exc)}") from exc
        self._writer = csv.writer(self._file)
        self._writer.writerow(["line", *CSV_COLUMNS, "reason"])

    def write(self, line: int, values: Mapping[str, Any], reason: str) -> None:
        self._writer.writerow([line, *(values.get(column) for column in CSV_COLUMNS), reason])

    def close(self) -> None:
        self._file.close()


def check_export_target(path: Path) -> None:
    """Raise :class:`CsvFileError` now, before any database work, if ``path`` cannot be
    where an export goes."""
    if path.is_dir():
        raise CsvFileError(f"cannot write {path}: it is a directory; name a file in it")
    if not path.parent.is_dir():
        raise CsvFileError(f"cannot write {path}: there is no directory {path.parent}")


def export_csv(conn: psycopg.Connection[Any], path: Path, *, active_only: bool = False) -> int:
    """Write customers to ``path`` with COPY; return how many rows were written.

    The rows go to a hidden file beside ``path`` that replaces it once complete,
    so a failed or interrupted export leaves no half file (nor clobbers an old
    one). A pipe or a device (``/dev/stdout``) is written to directly.
    """
    check_export_target(path)
    query = load_queries("bulk_import.sql")["copy_export_active" if active_only else "copy_export"]
    if path.exists() and not path.is_file():
        return _copy_out(conn, query, path, path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        rows = _copy_out(conn, query, partial, path)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return rows


def _copy_out(conn: psycopg.Connection[Any], query: Query, target: Path, named: Path) -> int:
    try:
        with target.open("wb") as file, conn.cursor() as cursor:
            with cursor.copy(query.sql) as copy:
                for chunk in copy:
                    file.write(chunk)
            return cursor.rowcount
    except OSError as exc:
        raise CsvFileError(f"cannot write {named}: {_reason(exc)}") from exc
    except psycopg.Error as exc:
        raise translate(exc, conn) from exc
