"""Pydantic models: what goes into the repositories and what comes out.

Input models validate early, before any SQL runs, with the same rules the
database enforces (names not blank, phones with at least 7 digits, e-mails of
the right shape), so a caller gets a ``ValidationError`` naming the field
instead of a constraint violation. Text is trimmed and put in Unicode normal
form C (address and notes also get LF line breaks); control characters are
refused (address and notes may hold newlines and tabs); an optional field
given as blank text is stored as NULL.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictStr,
    TypeAdapter,
    computed_field,
    field_validator,
)
from pydantic_core import PydanticCustomError

# pydantic needs typing_extensions' TypedDict before Python 3.12 (and depends on it).
from typing_extensions import TypedDict

__all__ = [
    "MAX_ADDRESS_LENGTH",
    "MAX_NOTES_LENGTH",
    "Customer",
    "CustomerCreate",
    "CustomerList",
    "CustomerSearch",
    "CustomerUpdate",
    "User",
    "UserCreate",
    "check_arguments",
    "phone_digits",
]

MIN_PHONE_DIGITS = 7
# Generous for a postal address and a customer's history, and bounded, so that
# every row the API accepts fits one CSV record that import reads back; the
# database enforces them too (customers_address_length, customers_notes_length).
MAX_ADDRESS_LENGTH = 1_000
MAX_NOTES_LENGTH = 100_000
BIGINT_MAX = 2**63 - 1
# Ids and offsets travel as PostgreSQL bigint. Strict: "1", 1.0 and True are
# no ids (a form's text must be parsed by the caller, who knows what it means).
Id = Annotated[int, Field(strict=True, ge=-BIGINT_MAX - 1, le=BIGINT_MAX)]
Offset = Annotated[int, Field(strict=True, ge=0, le=BIGINT_MAX)]
MAX_PER_PAGE = 100
_NON_DIGITS = re.compile(r"[^0-9]")


def phone_digits(phone: str) -> str:
    """The digits of a phone number, as the database's generated columns keep them."""
    return _NON_DIGITS.sub("", phone)


# Unicode category Cc, all of it (text cannot hold U+0000 in PostgreSQL): the
# database's CHECKs (text_is_clean_line / text_is_clean_block) refuse the same.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE_AND_TAB = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_BREAK = re.compile("\r\n?")


def _nfc(value: Any) -> Any:
    """Text in Unicode normal form C, as the database requires and a keyboard types.

    Before any length check: normalising may change the length.
    """
    if isinstance(value, str) and not unicodedata.is_normalized("NFC", value):
        return unicodedata.normalize("NFC", value)
    return value


def _nfc_lf(value: Any) -> Any:
    """NFC, with CRLF and CR line breaks (Windows, old Macs) as LF."""
    if isinstance(value, str) and "\r" in value:
        value = _LINE_BREAK.sub("\n", value)
    return _nfc(value)


# Typed errors (type and ctx), so callers such as import's reports recognise
# them without reading their words.
def _refuse(found: re.Match[str] | None, allowed: str = "") -> None:
    if found:
        raise PydanticCustomError(
            "control_character",
            "must not contain control character {character} (at character {position}){allowed}",
            {
                "character": f"U+{ord(found.group()):04X}",
                "position": found.start() + 1,
                "allowed": allowed,
            },
        )


def _one_line(value: str) -> str:
    # An ESC reaches terminals, a newline breaks tables, and U+001F is
    # search_text's field separator.
    _refuse(_CONTROL.search(value))
    return value


def _multi_line(value: str) -> str:
    _refuse(_CONTROL_BUT_NEWLINE_AND_TAB.search(value), "; only newline and tab are allowed")
    return value


def _blank_to_none(value: Any) -> Any:
    # Blank optional text (a form's empty box) is stored as NULL.
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _check_phone(phone: str) -> str:
    _one_line(phone)
    digits = len(phone_digits(phone))
    if digits < MIN_PHONE_DIGITS:
        raise PydanticCustomError(
            "phone_digits",
            "a phone number needs at least {minimum} digits, not {digits}",
            {"minimum": MIN_PHONE_DIGITS, "digits": digits},
        )
    return phone


def _check_email(email: str) -> str:
    _one_line(email)
    try:
        checked = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError("email_invalid", "{reason}", {"reason": str(exc)}) from exc
    return checked.normalized


# Constraints sit on the str itself, so messages read "String should have at
# most 100 characters"; each field runs one Python check at most, after them
# (validation is on every write's hot path).
Address = Annotated[
    str, Field(max_length=MAX_ADDRESS_LENGTH), BeforeValidator(_nfc_lf), AfterValidator(_multi_line)
]
Notes = Annotated[
    str, Field(max_length=MAX_NOTES_LENGTH), BeforeValidator(_nfc_lf), AfterValidator(_multi_line)
]
Name = Annotated[
    str, Field(min_length=1, max_length=100), BeforeValidator(_nfc), AfterValidator(_one_line)
]
Phone = Annotated[str, Field(max_length=20), BeforeValidator(_nfc), AfterValidator(_check_phone)]
Email = Annotated[str, Field(max_length=100), BeforeValidator(_nfc), AfterValidator(_check_email)]
OptionalPhone = Annotated[Phone | None, BeforeValidator(_blank_to_none)]
OptionalEmail = Annotated[Email | None, BeforeValidator(_blank_to_none)]
OptionalAddress = Annotated[Address | None, BeforeValidator(_blank_to_none)]
OptionalNotes = Annotated[Notes | None, BeforeValidator(_blank_to_none)]

_INPUT = ConfigDict(str_strip_whitespace=True, extra="forbid", frozen=True)


class CustomerCreate(BaseModel):
    """A new customer, as a registration form would send it."""

    model_config = _INPUT

    name: Name
    phone: Phone
    phone_secondary: OptionalPhone = None
    email: OptionalEmail = None
    address: OptionalAddress = None
    notes: OptionalNotes = None


class CustomerUpdate(BaseModel):
    """A partial update: only the fields that were set are written.

    An explicit ``None`` (or blank text) clears a nullable field; ``name`` and
    ``phone`` cannot be cleared.
    """

    model_config = _INPUT

    name: Name | None = None
    phone: Phone | None = None
    phone_secondary: OptionalPhone = None
    email: OptionalEmail = None
    address: OptionalAddress = None
    notes: OptionalNotes = None

    @field_validator("name", "phone")
    @classmethod
    def _required_columns_cannot_be_cleared(cls, value: str | None) -> str:
        # Runs only for values given explicitly: leaving the field out is fine.
        if value is None:
            raise ValueError("cannot be cleared; leave it out to keep the current value")
        return value


class Customer(BaseModel):
    """A customer as stored, with the name of the user who registered them."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    name: str
    phone: str
    phone_secondary: str | None
    email: str | None
    address: str | None
    notes: str | None
    is_active: bool
    created_by_id: int | None
    created_by_name: str | None
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def display_phones(self) -> str:
        """Both phones as typed, for a screen: ``"555-123-4567 / 555 987 6543"``."""
        return " / ".join(phone for phone in (self.phone, self.phone_secondary) if phone)


class CustomerList(BaseModel):
    """One page of customers and how many there are in all."""

    model_config = ConfigDict(frozen=True)

    customers: list[Customer]
    total: int
    page: int
    per_page: int


class CustomerSearch(BaseModel):
    """A search box's input. The query is trimmed and must not be blank."""

    model_config = _INPUT

    query: Annotated[
        str, Field(min_length=1, max_length=100), BeforeValidator(_nfc), AfterValidator(_one_line)
    ]
    include_inactive: StrictBool = False
    limit: int = Field(20, strict=True, ge=1, le=MAX_PER_PAGE)
    offset: Offset = 0


class UserCreate(BaseModel):
    """A new user."""

    model_config = _INPUT

    full_name: Annotated[
        str, Field(min_length=1, max_length=200), BeforeValidator(_nfc), AfterValidator(_one_line)
    ]
    email: OptionalEmail = None


class User(BaseModel):
    """A user of the shop's system."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    full_name: str
    email: str | None
    created_at: datetime


class _Arguments(TypedDict, total=False):
    """The repositories' plain arguments, by name, with the rule each obeys."""

    __pydantic_config__ = ConfigDict(title="repository call arguments")  # type: ignore[misc]

    customer_id: Id
    user_id: Id
    created_by_id: Id | None
    include_inactive: StrictBool
    phone: StrictStr
    # The page's offset, (page - 1) * per_page, must fit in a bigint too.
    page: Annotated[int, Field(strict=True, ge=1, le=BIGINT_MAX // MAX_PER_PAGE)]
    per_page: Annotated[int, Field(strict=True, ge=1, le=MAX_PER_PAGE)]
    # A version stamp read from Customer.updated_at: with its time zone, as the
    # database gave it (a naive one would be read in the session's time zone).
    expected_updated_at: Annotated[AwareDatetime, Strict()] | None


_ARGUMENTS = TypeAdapter(_Arguments)


def check_arguments(**arguments: Any) -> None:
    """Raise ``ValidationError`` (naming the argument) unless each obeys its rule above."""
    _ARGUMENTS.validate_python(arguments)
