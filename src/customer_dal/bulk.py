"""Load many customers at once: validated in Python, streamed with COPY, checked
and inserted by the database in one transaction.

The same path serves ``customer-dal import`` (rows from a CSV file) and
``customer-dal seed`` (generated rows). Memory stays flat whatever the batch
size: rows stream through, and the refused rows come back in line order, with
reasons a person can act on. No temporary table is needed (TEMP may be revoked).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .errors import ConstraintViolationError, DataAccessError, UnknownUserError, translate
from .models import CustomerCreate
from .queries import load_queries

__all__ = [
    "CommitInterrupted",
    "ImportRejectedError",
    "ImportResult",
    "Rejection",
    "bulk_import",
    "explain_validation_error",
]

T = TypeVar("T")

_PROGRESS_EVERY = 10_000
_TRUE = {"true", "t", "yes", "y", "1", ""}
_FALSE = {"false", "f", "no", "n", "0"}
_FIELDS = frozenset(CustomerCreate.model_fields)
# pydantic's error types that, for empty input, mean the value is simply missing.
_EMPTY_MEANS_REQUIRED = {
    "string_type",
    "string_too_short",
    "value_error",
    "phone_digits",
    "email_invalid",
}


@dataclass(frozen=True)
class Rejection:
    """A row that was refused: where it was, why, and what it held.

    ``values`` is the row as the source gave it when validation refused it,
    and as validated (trimmed, normal form C) when a phone check refused it.
    """

    line: int
    reason: str
    values: Mapping[str, Any]


@dataclass
class ImportResult:
    """What a batch did: rows written and rows refused."""

    imported: int = 0
    rejected: int = 0


class ImportRejectedError(DataAccessError):
    """An all-or-nothing batch had bad rows, so nothing was written."""

    def __init__(self, rejected: int) -> None:
        self.rejected = rejected
        rows = "row was" if rejected == 1 else "rows were"
        super().__init__(f"{rejected:,} {rows} refused, so nothing was imported")


class CommitInterrupted(KeyboardInterrupt):
    """Ctrl-C arrived while the batch was committing: it may or may not have been written.

    Anywhere else an interrupt rolls the batch back, so nothing was written.
    """

    def __init__(self) -> None:
        super().__init__(
            "interrupted while committing: the batch may or may not have been written; "
            "check before retrying"
        )


def explain_validation_error(error: ValidationError) -> str:
    """Each problem pydantic found, as a person would put it, in one line:
    ``name is required; phone '12-34' has 4 digits; at least 7 are needed``."""
    return "; ".join(_explain(problem) for problem in error.errors())


def _explain(problem: ErrorDetails) -> str:
    """One problem, named by its field, in plain words where pydantic's are jargon."""
    field = ".".join(str(part) for part in problem["loc"]) or "the row"
    kind = problem["type"]
    value = problem.get("input")
    if kind == "missing" or (kind in _EMPTY_MEANS_REQUIRED and _is_empty(value)):
        return f"{field} is required"
    phrase = _PHRASES.get(kind)
    if phrase is None:
        return f"{field}: {problem['msg']}"
    return phrase(field, value, problem.get("ctx") or {}, problem["msg"])


def _phone_digits(field: str, value: Any, context: dict[str, Any], _: str) -> str:
    digits = context["digits"]
    return (
        f"{field} {value!r} has {digits} digit{'' if digits == 1 else 's'}; "
        f"at least {context['minimum']} are needed"
    )


# pydantic's error type (and the models' own: control_character, phone_digits,
# email_invalid) -> the reason, from the field, the input, the error's ctx and message.
_PHRASES: dict[str, Callable[[str, Any, dict[str, Any], str], str]] = {
    "string_too_long": lambda field, _, ctx, __: (
        f"{field} is longer than {ctx['max_length']:,} characters"
    ),
    "less_than_equal": lambda field, _, ctx, __: f"{field} must be at most {ctx['le']}",
    "greater_than_equal": lambda field, _, ctx, __: f"{field} must be at least {ctx['ge']}",
    "control_character": lambda field, _, __, message: f"{field} {message}",
    "value_error": lambda field, _, ctx, __: f"{field} {ctx['error']}",  # a validator's own words
    "phone_digits": _phone_digits,
    "email_invalid": lambda field, value, ctx, _: (
        f"{field} {value!r} is not valid: {ctx['reason']}"
    ),
}


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _parse_active(value: Any) -> bool | None:
    """``is_active`` as written in a file (``true``, ``no``, blank for true, ...); None
    when it is neither."""
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _validated(values: Mapping[str, Any]) -> tuple[Any, ...]:
    """The row as COPY wants it; raises ValueError giving every reason for a bad row."""
    reasons = []
    try:
        customer = CustomerCreate.model_validate(
            {key: value for key, value in values.items() if key in _FIELDS}
        )
    except ValidationError as exc:
        reasons.append(explain_validation_error(exc))
    active = _parse_active(values.get("is_active"))
    if active is None:
        reasons.append(f"is_active must be true or false, not {values.get('is_active')!r}")
    if reasons:
        raise ValueError("; ".join(reasons))
    return (
        customer.name,
        customer.phone,
        customer.phone_secondary,
        customer.email,
        customer.address,
        customer.notes,
        active,
    )


def _describe(kind: str, ref: int, phone: str) -> str:
    if kind == "repeated_in_batch":
        return f"phone {phone!r} repeats the phone of line {ref}"
    return f"phone {phone!r} already belongs to active customer {ref}"


RowSource = Callable[[], Iterable[tuple[int, Mapping[str, Any]]]]


class _NeedsCheckedPass(Exception):
    """The straight pass met a bad row or a phone conflict: nothing was kept."""


def bulk_import(
    conn: psycopg.Connection[Any],
    rows: RowSource,
    *,
    skip_invalid: bool = False,
    on_reject: Callable[[Rejection], None] = lambda rejection: None,
    on_progress: Callable[[int], None] = lambda rows_read: None,
    on_phase: Callable[[str], None] = lambda what: None,
    created_by_id: int | None = None,
) -> ImportResult:
    """Import ``(line, values)`` rows as customers, all or nothing.

    ``rows`` is called to get the rows, at most twice (see below). Each row
    passes the rules of :class:`CustomerCreate` (plus an optional
    ``is_active``); keys that are not customer fields are ignored. Active rows
    whose primary phone repeats an earlier row of the batch, or belongs to an
    active customer, are refused. ``on_reject`` hears about every refused row,
    in line order, once all rows were read. ``on_progress`` hears how many rows
    were read so far; ``on_phase`` what the import turns to next (``checking
    each row``, ``checking 20,011 rows for conflicts``), after which the count
    starts again.

    By default one refused row refuses the batch: :class:`ImportRejectedError`,
    and nothing is written. With ``skip_invalid`` the good rows are written.
    An error raised while ``rows`` is iterated (a broken file) rolls back too.

    The first pass streams validated rows straight into customers with COPY, so
    Python validates while the server maintains the indexes, on the other core.
    Should a row fail, or a phone collide, that pass is rolled back and a
    checked pass reads the rows again, a chunk at a time: it finds every repeated
    phone (from the digits it keeps of each active row) or taken one (asking the
    database about the chunk's phones), writes the chunk's good rows, and reports
    each refused row once all were read. It needs no temporary table.
    """
    try:
        return ImportResult(imported=_copy_straight_in(conn, rows(), on_progress, created_by_id))
    except _NeedsCheckedPass:
        on_phase("checking each row")
        return _checked_import(
            conn,
            rows(),
            skip_invalid=skip_invalid,
            on_reject=on_reject,
            on_progress=on_progress,
            on_phase=on_phase,
            created_by_id=created_by_id,
        )


def _copy_straight_in(
    conn: psycopg.Connection[Any],
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    on_progress: Callable[[int], None],
    created_by_id: int | None,
) -> int:
    """COPY validated rows into customers; raise _NeedsCheckedPass at the first problem."""

    def copy_in() -> int:
        read = 0
        with conn.cursor() as cursor:
            try:
                with (
                    cursor.copy(load_queries("bulk_import.sql")["copy_customers"].sql) as copy,
                    _cancelled_on_interrupt(conn),
                ):
                    for _, values in rows:
                        read += 1
                        if read % _PROGRESS_EVERY == 0:
                            on_progress(read)
                        try:
                            copy.write_row((*_validated(values), created_by_id))
                        except ValueError:
                            raise _NeedsCheckedPass from None
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != "customers_active_phone_key":
                    raise
                raise _NeedsCheckedPass from exc
            on_progress(read)
            return cursor.rowcount

    return _in_one_transaction(conn, copy_in, created_by_id)


@contextmanager
def _cancelled_on_interrupt(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """On Ctrl-C, cancel the COPY in the server before leaving it.

    Leaving a COPY sends what is still buffered, at the speed the server reads
    it: behind a lock or a slow trigger that is minutes, and the first Ctrl-C
    would seem ignored. Cancelled, the server discards the rest at once.
    """
    try:
        yield
    except KeyboardInterrupt:
        with suppress(psycopg.Error):  # the interrupt matters more than a failed cancel
            conn.cancel_safe(timeout=5)
        raise


def _in_one_transaction(
    conn: psycopg.Connection[Any], work: Callable[[], T], created_by_id: int | None
) -> T:
    """Run ``work`` in a transaction (a savepoint in the caller's); errors leave as ours.

    A lost connection's message says what became of the batch: nothing was
    committed, unless the connection was lost (or Ctrl-C came) while committing.
    """
    callers = conn.info.transaction_status != TransactionStatus.IDLE
    committing = False
    try:
        with conn.transaction():
            result = work()
            committing = not callers
        return result
    except KeyboardInterrupt:
        if committing:
            raise CommitInterrupted from None
        raise
    except psycopg.errors.IntegrityError as exc:
        raise _integrity_error(exc, created_by_id) from exc
    except psycopg.Error as exc:
        raise translate(exc, conn, writes=True, in_transaction=not committing) from exc


def _integrity_error(
    exc: psycopg.errors.IntegrityError, created_by_id: int | None
) -> DataAccessError:
    if exc.diag.constraint_name == "customers_created_by_id_fkey":
        return UnknownUserError(created_by_id)
    # e.g. another writer took a phone between the checked pass's check and insert
    return ConstraintViolationError.from_driver(exc)


def _checked_import(
    conn: psycopg.Connection[Any],
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    skip_invalid: bool,
    on_reject: Callable[[Rejection], None],
    on_progress: Callable[[int], None],
    on_phase: Callable[[str], None],
    created_by_id: int | None,
) -> ImportResult:
    """Check each chunk of rows, write its good rows, then report every refused row in
    line order (and refuse all, unless ``skip_invalid``).

    No temporary table, so this works for a role without TEMP: repeats inside the batch
    are found from the digits of each active row's phone (the only thing kept for every
    row), taken phones by asking customers about one chunk at a time, and the refused
    rows wait in a spooled file (in memory while small, on disk beyond).
    """

    def check_insert() -> ImportResult:
        check = _Check(conn, created_by_id)
        with tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY, "w+", encoding="utf-8") as refused:
            read = 0
            chunk: list[tuple[int, tuple[Any, ...] | None, Any]] = []
            for line, values in rows:
                read += 1
                if read % _PROGRESS_EVERY == 0:
                    on_progress(read)
                try:
                    chunk.append((line, _validated(values), None))
                except ValueError as exc:
                    chunk.append((line, None, (str(exc), _given(values))))
                if len(chunk) == _CHECK_CHUNK:
                    check.chunk(chunk, refused, keep_writing=skip_invalid)
                    chunk = []
            check.chunk(chunk, refused, keep_writing=skip_invalid)
            on_progress(read)
            on_phase(f"checking {read:,} rows for conflicts")
            refused.seek(0)
            for record in refused:
                on_reject(_rejection(*json.loads(record)))
        result = ImportResult(imported=check.written, rejected=check.rejected)
        if result.rejected and not skip_invalid:
            raise ImportRejectedError(result.rejected)
        on_phase(f"writing {read - result.rejected:,} rows")
        return result

    return _in_one_transaction(conn, check_insert, created_by_id)


# Rows checked (and written) at a time: one query for their phones, one COPY.
_CHECK_CHUNK = 5_000
# Refused rows kept in memory up to this many characters, then on disk.
_SPOOL_IN_MEMORY = 4 * 1024 * 1024
_NOT_DIGITS = re.compile("[^0-9]")


class _Check:
    """The checked pass's state: the first line of each active phone's digits, what
    was refused and written so far."""

    def __init__(self, conn: psycopg.Connection[Any], created_by_id: int | None):
        self.conn = conn
        self.created_by_id = created_by_id
        self.first_line: dict[str, int] = {}
        self.rejected = 0
        self.written = 0

    def chunk(
        self,
        chunk: list[tuple[int, tuple[Any, ...] | None, Any]],
        refused: IO[str],
        *,
        keep_writing: bool,
    ) -> None:
        """Refuse the chunk's bad rows (into ``refused``, as JSON lines), then COPY its
        good ones, unless a row was refused and the batch is all or nothing."""
        queries = load_queries("bulk_import.sql")
        digits = {line: _NOT_DIGITS.sub("", row[1]) for line, row, _ in chunk if row and row[6]}
        with self.conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(queries["taken_phones"].sql, {"digits": list(digits.values())})
            taken: dict[str, int] = dict(cursor)
        good: list[tuple[Any, ...]] = []
        for line, row, why in chunk:
            if row is None:
                self._refuse(refused, line, "refused", None, *why)
            elif line not in digits:  # an inactive row: no phone check
                good.append(row)
            elif (first := self.first_line.setdefault(digits[line], line)) != line:
                self._refuse(refused, line, "repeated_in_batch", first, None, row)
            elif digits[line] in taken:
                self._refuse(refused, line, "held_by_customer", taken[digits[line]], None, row)
            else:
                good.append(row)
        if good and (keep_writing or not self.rejected):
            with self.conn.cursor() as cursor:
                with (
                    cursor.copy(queries["copy_customers"].sql) as copy,
                    _cancelled_on_interrupt(self.conn),
                ):
                    for row in good:
                        copy.write_row((*row, self.created_by_id))
                self.written += cursor.rowcount

    def _refuse(self, refused: IO[str], *record: Any) -> None:
        """Spool one refused row's record: line, kind, ref, reason, values."""
        self.rejected += 1
        refused.write(json.dumps(record) + "\n")


def _given(values: Mapping[str, Any]) -> Any:
    """A refused row as the source gave it, as JSON would carry it (odd types as text)."""
    return json.loads(json.dumps(dict(values), default=str))


def _rejection(line: int, kind: str, ref: int | None, reason: str | None, values: Any) -> Rejection:
    """A refused row's record, read back from the spool, as a Rejection."""
    if kind == "refused":
        return Rejection(line, str(reason), values)
    stored = dict(zip(_STAGED_COLUMNS, values, strict=True))
    return Rejection(line, _describe(kind, int(ref or 0), stored["phone"]), stored)


_STAGED_COLUMNS = ("name", "phone", "phone_secondary", "email", "address", "notes", "is_active")
