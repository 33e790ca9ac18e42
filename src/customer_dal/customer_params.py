"""The customer queries' parameters, built from validated input.

Pure and free of I/O, so the async repository and its generated sync twin
(:mod:`customer_dal.customers_async`, :mod:`customer_dal.customers`) share one
copy of every decision that is not a round trip: how a search query becomes
patterns and flags that choose the search's last tier, what an update sets.
"""

from __future__ import annotations

import re
from typing import Any

from .models import MIN_PHONE_DIGITS, CustomerSearch, CustomerUpdate
from .models import phone_digits as digits_of

__all__ = ["like_escape", "search_params", "update_params"]

# A query that looks like a phone number: digits and the usual separators only.
_PHONE_LIKE = re.compile(r"^[0-9 +\-().]+$")
_MIN_SEARCH_DIGITS = 3
# Shorter queries have no trigram: they match name and e-mail prefixes only.
_MIN_SUBSTRING = 3
# A query of this many digits (and no letter) is rare among phones: its last
# tier collects the matches and sorts them (digits).
_MIN_SPARSE_DIGITS = 7
# How many names, per customer wanted, the search walks in name order before
# it turns to the ordered index: a query matching one name in 16 or more (an
# e-mail domain: 1 in 8 at 1M rows) is answered by the walk alone, which costs
# about as much as the few index pages it reads (0.1-0.2 ms at 1M rows); any
# other query wastes that much.
_WALK_PER_RESULT = 16
# (and never more than this, which deep pages would ask for)
_MAX_WALK = 2_000

# The update query's set_<field> parameters: which fields the caller gave.
_SET_FLAGS = tuple((field, f"set_{field}") for field in CustomerUpdate.model_fields)


def like_escape(text: str) -> str:
    """Make ``%``, ``_`` and ``\\`` literal in a LIKE pattern (backslash is the escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_params(search: CustomerSearch) -> dict[str, Any]:
    """The search query's parameters (see sql/customers.sql): its tiers find the first
    ``offset + limit`` customers, and it returns those past ``offset``."""
    text = like_escape(search.query)
    digits = digits_of(search.query) if _PHONE_LIKE.match(search.query) else ""
    filter_pattern = f"%{text}%"
    digit_pattern = f"%{digits}%" if len(digits) >= _MIN_SEARCH_DIGITS else None
    # The rest tier reads the matches of each branch in order. A query of digits
    # alone is its own digit pattern: one branch. One whose digits are one run
    # ("(555)", "555-") needs no text branch: any text containing the query
    # contains the run. Any other phone-like query ("555-1") is also looked
    # for as typed, but its trigrams are digits, on every page of the ordered
    # index: the GIN index collects those few matches (literal_branch).
    digit_branch = None if digit_pattern == filter_pattern else digit_pattern
    phone_text = digit_branch is not None
    prefix_only = _prefix_only(search.query)
    limit = search.offset + search.limit
    # A query with a letter is no phone: its text is all it can match, which
    # the index-only walk can test (prefix-only queries match no substring).
    walkable = not prefix_only and any(char.isalpha() for char in search.query)
    return {
        "query": search.query,
        "limit": limit,
        "offset": search.offset,
        "walk": min(_WALK_PER_RESULT * limit, _MAX_WALK) if walkable else 0,
        "prefix": f"{text}%",
        # What name and e-mail must match: a prefix when the query has no trigram
        # (the last tier is then e-mail prefixes).
        "pattern": f"{text}%" if prefix_only else filter_pattern,
        "prefix_only": prefix_only,
        # (digits is empty unless the query looks like a phone)
        "phone_fragment": len(digits) >= _MIN_SPARSE_DIGITS,
        "filter": filter_pattern,
        "exact": digits if len(digits) >= MIN_PHONE_DIGITS else None,
        "digit_pattern": digit_pattern,
        "text_branch": None if phone_text else filter_pattern,
        "digit_branch": digit_branch,
        "literal_branch": filter_pattern if phone_text and digits not in search.query else None,
        # Without a letter, the query could match phone digits in search_text
        # that it must not match (a text-only query, a short one): test exactly.
        "check_fields": not any(char.isalpha() for char in search.query),
        "include_inactive": search.include_inactive,
    }


def _prefix_only(query: str) -> bool:
    """Whether ``query`` has no trigram to search by, so that it matches name and e-mail
    prefixes only: shorter than a trigram, or without a letter or digit (pg_trgm makes
    trigrams of words, and words of letters and digits)."""
    return len(query) < _MIN_SUBSTRING or not any(char.isalnum() for char in query)


def update_params(
    customer_id: int, changes: CustomerUpdate, expected_updated_at: Any
) -> dict[str, Any]:
    """The update query's parameters: the new values, and a set_<field> flag for each
    field the caller gave (an explicit ``None`` clears a field; a missing one stays)."""
    given = changes.model_fields_set
    # A model's __dict__ is its fields: no model_dump() copy on the hot path.
    params: dict[str, Any] = {
        "id": customer_id,
        "expected_updated_at": expected_updated_at,
        **changes.__dict__,
    }
    params.update({flag: field in given for field, flag in _SET_FLAGS})
    return params
