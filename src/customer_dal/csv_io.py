"""Customers to and from CSV files: the file side of ``import`` and ``export``.

A file has a header row. ``name`` and ``phone`` are required columns;
``phone_secondary``, ``email``, ``address``, ``notes`` and ``is_active`` are
optional; other columns are ignored. Files are UTF-8 (a byte-order mark is
fine). A problem with the file itself (not UTF-8, a broken quote, a field over
the CSV module's 128 KiB limit, a missing required column) is a
:class:`CsvFileError`: the batch is rolled back and nothing is written.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg

from .errors import DataAccessError
from .queries import load_queries

__all__ = ["CSV_COLUMNS", "CsvFileError", "RejectsFile", "export_csv", "read_customer_rows"]

CSV_COLUMNS = ("name", "phone", "phone_secondary", "email", "address", "notes", "is_active")
REQUIRED_COLUMNS = ("name", "phone")


class CsvFileError(DataAccessError):
    """The file cannot be read as a customers CSV; nothing was written."""


def read_customer_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, values)`` for each data row; ``line`` is where the row starts."""
    line = 1
    try:
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
    except FileNotFoundError as exc:
        raise CsvFileError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            f"{path.name} is not UTF-8 (byte {exc.start} of a chunk near line {line}); "
            "save it as UTF-8 and retry"
        ) from exc
    except csv.Error as exc:
        raise CsvFileError(f"{path.name}, line {line}: {exc}") from exc


class RejectsFile:
    """``FILE.rejects.csv``: the refused rows as they were read, plus a reason column."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w", encoding="utf-8", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(["line", *CSV_COLUMNS, "reason"])

    def write(self, line: int, values: Mapping[str, Any], reason: str) -> None:
        self._writer.writerow([line, *(values.get(column) for column in CSV_COLUMNS), reason])

    def close(self) -> None:
        self._file.close()


def export_csv(conn: psycopg.Connection[Any], path: Path, *, active_only: bool = False) -> int:
    """Write customers to ``path`` with COPY; return how many rows were written."""
    query = load_queries("bulk_import.sql")["copy_export_active" if active_only else "copy_export"]
    with path.open("wb") as file, conn.cursor() as cursor:
        with cursor.copy(query.sql) as copy:
            for chunk in copy:
                file.write(chunk)
        return cursor.rowcount
