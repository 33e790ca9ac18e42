"""Realistic, deterministic fake customers for demos and benchmarks.

The same ``seed`` always gives the same rows. Names mix common first names and
surnames (drawn with a skew, as in a real list) with rare, made-up surnames;
phones come in mixed formats and are unique by digits; some customers have a
secondary phone or an e-mail, and a few are inactive.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

__all__ = ["fake_customers"]

FIRST_NAMES = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Maria",
    "José",
    "Ana",
    "Luis",
    "Carmen",
    "Wei",
    "Fatima",
    "Mohammed",
    "Aisha",
    "Olga",
    "Ivan",
    "Sofia",
    "Lucas",
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Ava",
    "Mateo",
    "Chloé",
    "Zoë",
]
SURNAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Müller",
    "Álvarez",
]
_SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ren",
    "tu",
    "vash",
    "qui",
    "zor",
    "bel",
    "dra",
    "fen",
    "gru",
    "hol",
    "jex",
    "nim",
    "osk",
    "pra",
    "tev",
    "ulm",
    "wyn",
]
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "example.org", "shop.example")
AREA_CODES = ("201", "305", "415", "555", "617", "702", "808", "917")
# Multiplying by a number coprime to 10**7 permutes 0..10**7-1: unique local numbers.
_LOCAL_SPACE = 10**7
_SCRAMBLE = 7_654_321


def _skewed(rng: random.Random, choices: tuple[str, ...] | list[str]) -> str:
    """Early entries come up far more often, as common names do."""
    index = min(int(rng.paretovariate(1.2)) - 1, len(choices) - 1)
    return choices[index]


def _rare_surname(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def _format_phone(rng: random.Random, area: str, local: int) -> str:
    number = f"{local:07d}"
    style = rng.randrange(5)
    if style == 0:
        return f"({area}) {number[:3]}-{number[3:]}"
    if style == 1:
        return f"{area}-{number[:3]}-{number[3:]}"
    if style == 2:
        return f"{area}.{number[:3]}.{number[3:]}"
    if style == 3:
        return f"+1 {area} {number[:3]} {number[3:]}"
    return f"{area}{number}"


def fake_customers(count: int, seed: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``count`` numbered customers as ``(n, values)``, ready for bulk_import."""
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    if count > _LOCAL_SPACE:
        raise ValueError(f"count must be at most {_LOCAL_SPACE:,}, not {count:,}")
    rng = random.Random(seed)  # noqa: S311 - fake data, reproducible on purpose
    for n in range(1, count + 1):
        first = _skewed(rng, FIRST_NAMES)
        last = _rare_surname(rng) if rng.random() < 0.1 else _skewed(rng, SURNAMES)
        area = rng.choice(AREA_CODES)
        local = (n * _SCRAMBLE) % _LOCAL_SPACE
        values: dict[str, Any] = {
            "name": f"{first} {last}",
            "phone": _format_phone(rng, area, local),
            "is_active": rng.random() >= 0.05,
        }
        if rng.random() < 0.3:
            values["phone_secondary"] = _format_phone(rng, "800", rng.randrange(_LOCAL_SPACE))
        if rng.random() < 0.6:
            user = f"{first}.{last}{rng.randrange(100)}".lower()
            values["email"] = f"{user}@{rng.choice(EMAIL_DOMAINS)}"
        yield n, values
