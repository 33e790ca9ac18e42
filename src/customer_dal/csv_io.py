"""Customers to and from CSV files: the file side of ``import`` and ``export``.

A file has a header row. ``name`` and ``phone`` are required columns;
``phone_secondary``, ``email``, ``address``, ``notes`` and ``is_active`` are
optional; other columns are ignored. Files are UTF-8 (a byte-order mark is
fine), separated by commas unless told otherwise (``;`` or a tab).

A problem with the file itself (missing, a directory, unreadable, not UTF-8, a
broken quote, a record longer than :data:`MAX_RECORD_CHARS`, a missing
required column) is a :class:`CsvFileError`: the batch is rolled back and
nothing is written. Import's memory stays bounded whatever the file holds,
because no record longer than that bound is ever read whole.

Every file written here (an export, a rejects file) appears under its name only
once complete: it is written to a hidden ``.NAME.partial-PID`` beside it,
flushed to disk, and renamed over the old file, so a failure, Ctrl-C or
SIGKILL leaves the old file byte for byte as it was.
"""

from __future__ import annotations

import csv
import glob
import os
import re
import stat
from collections.abc import Generator, Iterable, Iterator
from contextlib import ExitStack, closing, contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import psycopg

from .errors import DataAccessError, translate
from .models import MAX_NOTES_LENGTH
from .queries import load_queries

__all__ = [
    "CSV_COLUMNS",
    "DELIMITERS",
    "MAX_RECORD_CHARS",
    "CsvFileError",
    "RejectsFile",
    "check_export_target",
    "check_readable",
    "export_csv",
    "read_customer_rows",
]

CSV_COLUMNS = ("name", "phone", "phone_secondary", "email", "address", "notes", "is_active")
REQUIRED_COLUMNS = ("name", "phone")
# The separators a file may use, by the name a message gives them.
DELIMITERS = {",": "','", ";": "';'", "\t": "tab"}

# The longest record import reads, in characters. The longest a customer can
# need is about 101,000 characters (the models' limits: notes 100,000, address
# 1,000, the rest a few hundred), twice that if every character is a quote
# that CSV doubles: 2,000,000 leaves room for CRLF line breaks, decomposed
# accents and columns import ignores, and bounds import's memory (a record is
# held whole while it is parsed). csv's own per-field limit is raised to the
# same bound only while a record is parsed: it is process-wide, and 128 KiB by
# default, which a 100,000-character note of multi-byte text can come near.
MAX_RECORD_CHARS = 2_000_000

# Formula triggers in spreadsheets (OWASP "CSV injection"): a cell starting
# with one of these is run, not shown, when the file is opened.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Rows fetched per round trip by export: up to ~100 KB each, so memory stays
# near 100 MB even for a table of 100,000-character notes.
_EXPORT_BATCH = 1000
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>[1-9][0-9]{0,6})$")


class CsvFileError(DataAccessError):
    """The file cannot be read or written as a customers CSV; nothing was written."""


class _RecordTooLong(Exception):
    """A record ran past MAX_RECORD_CHARS (raised mid-read, named by the reader)."""


# --- reading ------------------------------------------------------------------------------


def check_readable(path: Path, delimiter: str = ",") -> None:
    """Raise :class:`CsvFileError` now, before any database work, if the file or its
    header cannot be imported."""
    for _ in read_customer_rows(path, delimiter):
        break


def read_customer_rows(path: Path, delimiter: str = ",") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, values)`` for each data row; ``line`` is where the row starts.

    ``values`` holds the customer columns the header names (lower-cased,
    trimmed), as read; a short row's missing columns are ``None``.
    """
    with closing(_records(path, delimiter)) as records:
        header_as_read = next(records, None)
        header = [column.strip().lower() for column in (header_as_read or (1, []))[1]]
        missing = [column for column in REQUIRED_COLUMNS if column not in header]
        if missing:
            raise _missing_columns(path, header_as_read, missing, delimiter)
        wanted = [(index, column) for index, column in enumerate(header) if column in CSV_COLUMNS]
        for line, record in records:
            if any(record):  # skip blank lines
                yield (
                    line,
                    {
                        column: record[index] if index < len(record) else None
                        for index, column in wanted
                    },
                )


def _missing_columns(
    path: Path,
    header_as_read: tuple[int, list[str]] | None,
    missing: list[str],
    delimiter: str,
) -> CsvFileError:
    """The error for a header without name or phone: what it found, and, when the
    file looks separated by something else, which --delimiter would read it."""
    message = f"{path.name}: the header lacks the required column(s) {', '.join(missing)}"
    if header_as_read is None:
        return CsvFileError(f"{message}; the file is empty")
    found = delimiter.join(header_as_read[1])
    shown = found if len(found) <= 120 else f"{found[:120]}..."
    message = f"{message}; it reads {shown!r}"
    for candidate, name in DELIMITERS.items():
        if candidate != delimiter and candidate in found:
            return CsvFileError(
                f"{message}; if the columns are separated by {name}, use --delimiter {name}"
            )
    return CsvFileError(message)


def _records(path: Path, delimiter: str) -> Generator[tuple[int, list[str]], None, None]:
    """``(line, fields)`` for every record of the file, header and blank lines included;
    ``line`` is the physical line where the record starts."""
    line = 1
    try:
        _refuse_special_files(path)
        with path.open(encoding="utf-8-sig", newline="") as file:
            lines = _BoundedLines(file)
            reader = csv.reader(lines, delimiter=delimiter, strict=True)
            while (record := _next_record(reader, lines)) is not None:
                yield line, record
                line = reader.line_num + 1
    except _RecordTooLong:
        raise CsvFileError(
            f"{path.name}, line {line}: the record runs past {MAX_RECORD_CHARS:,} characters, "
            f"far more than a customer can hold (notes up to {MAX_NOTES_LENGTH:,}); "
            "is a quote left open?"
        ) from None
    except UnicodeDecodeError as exc:
        raise CsvFileError(
            f"{path.name} is not UTF-8 (byte {exc.start} of a chunk near line {line}); "
            "save it as UTF-8 and retry"
        ) from exc
    except csv.Error as exc:
        raise CsvFileError(f"{path.name}, line {line}: {exc}") from exc
    except OSError as exc:
        raise CsvFileError(f"cannot read {path}: {_reason(exc)}") from exc


def _next_record(reader: Iterator[list[str]], lines: _BoundedLines) -> list[str] | None:
    """The next record, or None at the end of the file.

    csv's field limit is process-wide: it is raised for this call only, so no
    other reader in the process (a library's, a thread's between our records)
    loses the default's protection.
    """
    lines.record_chars = 0
    previous = csv.field_size_limit(MAX_RECORD_CHARS)
    try:
        return next(reader, None)
    finally:
        csv.field_size_limit(previous)


class _BoundedLines:
    """The file's lines for csv.reader, never more than MAX_RECORD_CHARS of one record.

    Iterating a file reads a whole line, however long (a 200 MB line took over
    a gigabyte); ``readline(limit)`` stops at the limit, so a record that runs
    past it is refused having read no more than the bound.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self.record_chars = 0  # of the record being read; reset by _next_record

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        text = self._file.readline(MAX_RECORD_CHARS + 1)
        if not text:
            raise StopIteration
        self.record_chars += len(text)
        if self.record_chars > MAX_RECORD_CHARS:
            raise _RecordTooLong
        return text


def _refuse_special_files(path: Path) -> None:
    """Import reads its file more than once (see bulk_import): a pipe or a device would
    block or come back empty the second time, so only regular files will do."""
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


# --- the rejects file ---------------------------------------------------------------------


class RejectsFile:
    """``FILE.rejects.csv``: each refused row exactly as the input holds it.

    Columns: ``line``, ``reason``, then the input's own header and fields as
    read (unknown columns too, in the input's order, with its delimiter), so a
    fixed rejects file imports like the original (``line`` and ``reason`` are
    ignored). The rows come from a reader of the input of its own, so
    :meth:`write` must be called in line order, as bulk_import reports them.

    A context manager: the file replaces any earlier one when the block ends
    without an exception, and is discarded otherwise (a failed import wrote
    nothing, so its refusals would only mislead).
    """

    def __init__(self, path: Path, source: Path, delimiter: str = ",") -> None:
        self.path = path
        self._source = source
        self._delimiter = delimiter
        self._stack = ExitStack()

    def __enter__(self) -> RejectsFile:
        named = f"the rejects file {self.path}"
        check_export_target(self.path, named)
        with ExitStack() as stack:
            file = stack.enter_context(_replacing(self.path, named))
            self._records = stack.enter_context(closing(_records(self._source, self._delimiter)))
            _, header = next(self._records, (1, []))
            self._writer = csv.writer(file, delimiter=self._delimiter, lineterminator="\r\n")
            self._writer.writerow(["line", "reason", *header])
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.__exit__(kind, error, traceback)

    def write(self, line: int, reason: str) -> None:
        """Add the record that starts at ``line``, after its line number and ``reason``."""
        for at, record in self._records:
            if at == line:
                self._writer.writerow([line, reason, *record])
                return
            if at > line:
                break
        raise CsvFileError(
            f"{self._source.name} changed while it was imported: no record starts at line {line}"
        )


# --- writing ------------------------------------------------------------------------------


def check_export_target(path: Path, named: str | None = None) -> None:
    """Raise :class:`CsvFileError` now, before any database work, if ``path`` cannot be
    where an export (or the file ``named``) goes."""
    if path.is_dir():
        hint = "" if named else "; name a file in it"
        raise CsvFileError(f"cannot write {named or path}: it is a directory{hint}")
    if not path.parent.is_dir():
        raise CsvFileError(f"cannot write {named or path}: there is no directory {path.parent}")


def export_csv(
    conn: psycopg.Connection[Any],
    path: Path,
    *,
    active_only: bool = False,
    excel_safe: bool = False,
    delimiter: str = ",",
) -> int:
    """Write customers to ``path``, oldest first; return how many rows were written.

    The values are written as stored, so the file imports back to the same
    customers. With ``excel_safe``, a cell starting with ``=``, ``+``, ``-``,
    ``@``, TAB or CR gets a ``'`` in front, so a spreadsheet shows it instead
    of running it as a formula; such a file no longer round-trips exactly
    (``+1 555 ...`` becomes ``'+1 555 ...``).

    The file replaces ``path`` only once complete (see the module's doc); a
    pipe or a device (``/dev/stdout``) is written to directly.
    """
    check_export_target(path)
    if path.exists() and not path.is_file():
        with _directly(path) as file:
            return _write_customers(conn, file, active_only, excel_safe, delimiter)
    with _replacing(path, str(path)) as file:
        return _write_customers(conn, file, active_only, excel_safe, delimiter)


def _write_customers(
    conn: psycopg.Connection[Any],
    file: _Output,
    active_only: bool,
    excel_safe: bool,
    delimiter: str,
) -> int:
    writer = csv.writer(file, delimiter=delimiter, lineterminator="\r\n")
    query = load_queries("bulk_import.sql")["export_customers"]
    try:
        # A server-side cursor: rows arrive a batch at a time, however many there are.
        with conn.transaction(), conn.cursor(name="customer_dal_export") as cursor:
            cursor.itersize = _EXPORT_BATCH
            cursor.execute(query.sql, {"active_only": active_only})
            writer.writerow(CSV_COLUMNS)
            rows: Iterable[tuple[Any, ...]] = map(_defused, cursor) if excel_safe else cursor
            writer.writerows(rows)
            return cursor.rownumber or 0
    except psycopg.Error as exc:
        raise translate(exc, conn) from exc


def _defused(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The row with a ``'`` before each text a spreadsheet would take for a formula."""
    return tuple(
        f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS) else cell
        for cell in row
    )


class _Output:
    """A text file whose write errors are :class:`CsvFileError` naming what is written."""

    def __init__(self, file: TextIO, named: str) -> None:
        self.file = file
        self.named = named

    def write(self, text: str) -> int:
        try:
            return self.file.write(text)
        except OSError as exc:
            raise _cannot_write(self.named, exc) from exc


def _cannot_write(named: str, exc: OSError) -> CsvFileError:
    return CsvFileError(f"cannot write {named}: {_reason(exc)}")


@contextmanager
def _directly(path: Path) -> Iterator[_Output]:
    """A pipe or a device, written as it goes: there is nothing to replace."""
    named = str(path)
    try:
        file = path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise _cannot_write(named, exc) from exc
    try:
        yield _Output(file, named)
        _flush(file, named, to_disk=False)  # a pipe or a device cannot fsync
    finally:
        _close_quietly(file)


@contextmanager
def _replacing(path: Path, named: str) -> Iterator[_Output]:
    """A new file that replaces ``path`` when the block ends without an exception.

    The rows go to ``.NAME.partial-PID`` in the same directory (a rename
    within one file system is atomic), which is flushed to disk before the
    rename, and the directory after it, so even a power cut leaves the old file
    or the new one, never a mix. Any exception, Ctrl-C included, removes the
    partial file; a SIGKILL leaves it, and the next write to ``path`` removes it.
    A symbolic link is followed: the file it points to is replaced, the link kept.
    """
    target = path.resolve()
    _remove_stale_partials(target)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    file = _create_like(partial, target, named)
    try:
        try:
            yield _Output(file, named)
            _flush(file, named, to_disk=True)
        finally:
            _close_quietly(file)
        try:
            partial.replace(target)
        except OSError as exc:
            raise _cannot_write(named, exc) from exc
    finally:
        partial.unlink(missing_ok=True)
    _flush_directory(target.parent)


def _create_like(partial: Path, target: Path, named: str) -> TextIO:
    """A new file, with the permissions of the file it will replace: an export kept
    private (0600) must not become readable by everyone when it is refreshed.

    O_EXCL: a file or link already there (planted where our pid says we
    write) is an error, never written through.
    """
    try:
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise _cannot_write(named, exc) from exc
    with suppress(FileNotFoundError):  # a new file keeps the umask's permissions
        os.fchmod(descriptor, stat.S_IMODE(target.stat().st_mode))
    return open(descriptor, "w", encoding="utf-8", newline="")


def _flush(file: TextIO, named: str, *, to_disk: bool) -> None:
    try:
        file.flush()
        if to_disk:
            os.fsync(file.fileno())
    except OSError as exc:
        raise _cannot_write(named, exc) from exc


def _close_quietly(file: TextIO) -> None:
    """Close ``file``. After a flush that worked there is nothing left to fail; after
    a failure, what is still buffered is moot and must not hide the first error."""
    with suppress(OSError):
        file.close()


def _flush_directory(directory: Path) -> None:
    """Make the rename durable. Some platforms and file systems cannot open or sync a
    directory: the file itself is already on disk, so that is no error."""
    with suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _remove_stale_partials(target: Path) -> None:
    """Remove the partial files of ``target`` whose writer is gone (SIGKILLed, or the
    machine stopped), so they do not pile up. A live process's partial is left
    alone; ours can only be a dead namesake's, since we have not started yet.

    On a directory shared between machines a pid names a process of this one
    only: a remote writer's partial may go, and that writer then fails
    (``cannot write``), leaving the target as it was.
    """
    for candidate in target.parent.glob(f".{glob.escape(target.name)}.partial-*"):
        match = _PARTIAL.match(candidate.name)
        if match and match["name"] == target.name:
            pid = int(match["pid"])
            if pid == os.getpid() or not _is_running(pid):
                candidate.unlink(missing_ok=True)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
