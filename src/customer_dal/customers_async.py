"""AsyncCustomerRepository: the customers table, through the queries in ``sql/customers.sql``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import psycopg

from .calls_async import execute, run_call
from .customer_params import like_escape, search_params, update_params
from .errors import (
    ConstraintViolationError,
    DuplicatePhoneError,
    SchemaNotReadyError,
    StaleUpdateError,
    UnknownUserError,
)
from .flavours import AsyncCursors, require_connection
from .models import (
    MIN_PHONE_DIGITS,
    Customer,
    CustomerCreate,
    CustomerList,
    CustomerSearch,
    CustomerUpdate,
    check_arguments,
)
from .models import phone_digits as digits_of
from .queries import load_queries

# like_escape: search's LIKE escaping, for callers who build patterns of their own.
__all__ = ["AsyncCustomerRepository", "like_escape"]

T = TypeVar("T")


class AsyncCustomerRepository:
    """Create, find, page through, change and soft-delete customers.

    Every method is one atomic unit and composes inside the caller's
    transaction (see :mod:`customer_dal.calls`): on an autocommit connection
    each call stays atomic by itself; inside ``with conn.transaction():``, or
    on a connection without autocommit, it runs in a savepoint and never
    commits. Invalid input raises pydantic's ``ValidationError`` before any SQL
    runs; every other failure is a :class:`~customer_dal.DataAccessError`.

    Transactions belong to the connection, so give each thread (or task) that
    opens them its own connection (and repository), e.g. from a pool.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        require_connection(conn, psycopg.AsyncConnection, self)
        self._conn = conn
        self._queries = load_queries("customers.sql")
        self._cursors = AsyncCursors(conn)

    async def _fetch_customer(self, name: str, params: Mapping[str, Any]) -> Customer | None:
        cursor = await execute(self._cursors.customers, self._queries[name], params)
        return await cursor.fetchone()

    async def _read_customer(self, name: str, params: Mapping[str, Any]) -> Customer | None:
        return await run_call(self._conn, lambda: self._fetch_customer(name, params))

    async def _write_customer(self, name: str, params: Mapping[str, Any]) -> Customer | None:
        return await run_call(self._conn, lambda: self._fetch_customer(name, params), writes=True)

    async def _fetch_customers(self, name: str, params: Mapping[str, Any]) -> list[Customer]:
        cursor = await execute(self._cursors.customers, self._queries[name], params)
        return await cursor.fetchall()

    async def _fetch_value(self, name: str, params: Mapping[str, Any]) -> Any:
        cursor = await execute(self._cursors.values, self._queries[name], params)
        row = await cursor.fetchone()
        return row[0] if row else None

    async def create(
        self, data: CustomerCreate | Mapping[str, Any], created_by_id: int | None = None
    ) -> Customer:
        """Register a customer.

        Raises :class:`DuplicatePhoneError` when an active customer already holds
        the primary phone (compared by digits), :class:`UnknownUserError` when
        ``created_by_id`` names no user.
        """
        customer = CustomerCreate.model_validate(data)
        check_arguments(created_by_id=created_by_id)
        # A model's __dict__ is its fields: no model_dump() copy on the hot path.
        params = {**customer.__dict__, "created_by_id": created_by_id}
        try:
            created = await self._write_customer("create", params)
        except ConstraintViolationError as exc:
            await self._raise_specific(exc, phone=customer.phone, created_by_id=created_by_id)
        assert created is not None  # noqa: S101 - INSERT ... RETURNING returns the row
        return created

    async def get(self, customer_id: int, *, include_inactive: bool = False) -> Customer | None:
        """The customer with this id; a soft-deleted one only with ``include_inactive``."""
        check_arguments(customer_id=customer_id, include_inactive=include_inactive)
        params = {"id": customer_id, "include_inactive": include_inactive}
        return await self._read_customer("get", params)

    async def get_by_phone(self, phone: str) -> Customer | None:
        """The active customer reachable at ``phone``, however it is formatted.

        Both phones are matched by their digits; a primary-phone match wins over
        a secondary one, and among secondary matches the oldest customer wins.
        Text with fewer than 7 digits can be no customer's phone: ``None``.
        """
        check_arguments(phone=phone)
        digits = digits_of(phone)
        if len(digits) < MIN_PHONE_DIGITS:
            return None
        return await self._read_customer("get_by_phone", {"digits": digits})

    async def search(
        self, query: str, *, include_inactive: bool = False, limit: int = 20, offset: int = 0
    ) -> list[Customer]:
        """Customers whose name or e-mail contains ``query``, or whose phones contain its digits.

        Text matches ignore case for every alphabet (``JOSÉ`` finds ``José``);
        ``%``, ``_`` and ``\\`` are ordinary characters. A query made only of
        digits, spaces and ``+-().`` with at least 3 digits is also matched
        against both phones' digits, whatever their formatting (``777-88`` finds
        ``555 777 8888``). A query of 1 or 2 characters, or with no letter or
        digit, matches only names and e-mails that *start* with it: it has no
        trigram, so a substring search could not use an index.

        Results come most relevant first: customers whose phone is the query's
        number, then names starting with the query, then the rest; within each,
        by name ignoring case, then id. So pages taken with ``offset`` never
        overlap or skip.

        Raises ``ValidationError`` for a blank query, a limit outside 1-100 or
        a negative offset.
        """
        search = CustomerSearch(
            query=query, include_inactive=include_inactive, limit=limit, offset=offset
        )
        params = search_params(search)
        try:
            found, ready_for = await self._search_page("search", params)
        except SchemaNotReadyError:
            # 0010's function is missing: a migration may be creating it.
            ready_for = await run_call(
                self._conn, lambda: self._fetch_value("search_settings", {}), undo=True
            )
            if ready_for == "search":
                raise
            found = []
        if ready_for != "search":  # a migration is building the indexes search reads
            found, _ = await self._search_page(ready_for, params)
        return found

    async def _search_page(
        self, statement: str, params: Mapping[str, Any]
    ) -> tuple[list[Customer], str]:
        """A page from ``statement``, and the search statement the schema is ready for."""

        async def send() -> tuple[
            psycopg.AsyncRawCursor[tuple[Any, ...]], psycopg.AsyncRawCursor[Customer]
        ]:
            settings = await execute(self._cursors.values, self._queries["search_settings"])
            found = await execute(self._cursors.customers, self._queries[statement], params)
            return settings, found

        # undo: its settings end with the call, even inside a caller's transaction.
        # The rows are read after the call: in pipeline mode, the Sync that ends it
        # brings every result, so a search is one round trip, not two.
        settings, found = await run_call(self._conn, send, statements=2, undo=True)
        row = await settings.fetchone()
        assert row is not None  # noqa: S101 - one row, over an aggregate
        return await found.fetchall(), row[0]

    async def list(
        self, *, page: int = 1, per_page: int = 20, include_inactive: bool = False
    ) -> CustomerList:
        """One page of customers ordered by name, then id, with the total count.

        ``page`` counts from 1; ``per_page`` is 1-100. The page and the total
        come from one transaction (one snapshot when the caller's transaction
        is REPEATABLE READ).
        """
        check_arguments(page=page, per_page=per_page, include_inactive=include_inactive)
        params = {
            "include_inactive": include_inactive,
            "limit": per_page,
            "offset": (page - 1) * per_page,
        }

        async def page_and_total() -> CustomerList:
            customers = await self._fetch_customers("list_page", params)
            total = await self._fetch_value("count", params)
            return CustomerList(customers=customers, total=total, page=page, per_page=per_page)

        return await run_call(self._conn, page_and_total, statements=2)

    async def update(
        self,
        customer_id: int,
        data: CustomerUpdate | Mapping[str, Any],
        *,
        expected_updated_at: datetime | None = None,
    ) -> Customer | None:
        """Change the given fields of an active customer; ``None`` if there is none.

        Only the fields that were set are written; an explicit ``None`` clears a
        nullable field. Changing the phone to one an active customer holds
        raises :class:`DuplicatePhoneError`.

        With ``expected_updated_at`` (the ``updated_at`` you read), the change is
        made only if nobody changed the customer since: otherwise
        :class:`StaleUpdateError` and nothing is written. Without it, the last
        writer wins.
        """
        check_arguments(customer_id=customer_id, expected_updated_at=expected_updated_at)
        changes = CustomerUpdate.model_validate(data)
        params = update_params(customer_id, changes, expected_updated_at)
        try:
            return await self._write_versioned("update", params, self._fetch_customer)
        except ConstraintViolationError as exc:
            await self._raise_specific(exc, phone=changes.phone or "")

    async def soft_delete(
        self, customer_id: int, *, expected_updated_at: datetime | None = None
    ) -> bool:
        """Mark an active customer inactive; ``False`` if there is no such active customer.

        ``expected_updated_at`` works as in :meth:`update`.
        """
        check_arguments(customer_id=customer_id, expected_updated_at=expected_updated_at)
        params = {"id": customer_id, "expected_updated_at": expected_updated_at}
        return await self._write_versioned("soft_delete", params, self._fetch_value) is not None

    async def restore(
        self, customer_id: int, *, expected_updated_at: datetime | None = None
    ) -> Customer | None:
        """Re-activate a soft-deleted customer; ``None`` if there is no such inactive customer.

        Raises :class:`DuplicatePhoneError` when another active customer has
        taken the number meanwhile. ``expected_updated_at`` works as in :meth:`update`.
        """
        check_arguments(customer_id=customer_id, expected_updated_at=expected_updated_at)
        params = {"id": customer_id, "expected_updated_at": expected_updated_at}
        try:
            return await self._write_versioned("restore", params, self._fetch_customer)
        except ConstraintViolationError as exc:
            phone = await self._read_value("phone_of", {"id": customer_id})
            await self._raise_specific(exc, phone=phone)

    async def _write_versioned(
        self,
        name: str,
        params: Mapping[str, Any],
        fetch: Callable[[str, Mapping[str, Any]], Awaitable[T]],
    ) -> T:
        """Run a write that matches only the expected version; say why when it matched nothing."""
        expected = params["expected_updated_at"]

        async def write() -> T:
            written = await fetch(name, params)
            if written is None and expected is not None:
                current = await self._fetch_value("version_of", params)
                if current is not None and current != expected:
                    raise StaleUpdateError(params["id"], current)
            return written

        # Two statements when the write misses: they share a snapshot of the row.
        statements = 1 if expected is None else 2
        return await run_call(self._conn, write, writes=True, statements=statements)

    async def count_active(self) -> int:
        """How many customers are active."""
        count: int = await self._read_value("count_active", {})
        return count

    async def _read_value(self, name: str, params: Mapping[str, Any]) -> Any:
        return await run_call(self._conn, lambda: self._fetch_value(name, params))

    async def _raise_specific(
        self, exc: ConstraintViolationError, *, phone: str, created_by_id: int | None = None
    ) -> NoReturn:
        """Raise the specific exception for a rule this repository knows, by constraint name."""
        driver_error = exc.__cause__
        if exc.constraint == "customers_active_phone_key":
            holder = await self._read_value("active_phone_holder", {"digits": digits_of(phone)})
            raise DuplicatePhoneError(phone, holder) from driver_error
        if exc.constraint == "customers_created_by_id_fkey":
            raise UnknownUserError(created_by_id) from driver_error
        raise exc
