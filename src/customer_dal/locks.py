"""The table locks a migration statement takes, read from its text, for ``migrate --plan``.

A release engineer wants to know, before applying, which statements will make
the application's queries wait. This reads the statement the way PostgreSQL's
"Explicit Locking" table documents it, by the kind of command, including the
commands inside a ``DO`` block. It is a reading of the text, not of the server:
it names the lock on each table a statement names and says what that lock keeps
waiting; what is not listed (a new function, a comment on a function, ``SET``)
takes no lock that a query on a table could wait behind.
"""

from __future__ import annotations

import re

__all__ = ["statement_locks"]

_NAME = r'((?:"[^"]+"|\w+)(?:\.(?:"[^"]+"|\w+))?)'

# What each lock mode keeps waiting, among the application's own statements.
_BLOCKS = {
    "ACCESS EXCLUSIVE": "blocks reads and writes",
    "EXCLUSIVE": "blocks writes and most reads",
    "SHARE ROW EXCLUSIVE": "blocks writes",
    "SHARE": "blocks writes",
    "SHARE UPDATE EXCLUSIVE": "blocks no reads or writes, only schema changes and VACUUM",
    "ROW EXCLUSIVE": "blocks no reads or writes; row locks on the rows it changes",
}

# (pattern, mode, note), the first that matches a command wins, so the more
# specific come first. Group 1 names the table; for the index commands,
# "index" names an index, whose table takes the lock.
_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.DOTALL), mode, note)
    for pattern, mode, note in (
        (
            rf"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\b.*?\bON\s+(?:ONLY\s+)?{_NAME}",
            "SHARE UPDATE EXCLUSIVE",
            "waits for older transactions to end",
        ),
        (rf"CREATE\s+(?:UNIQUE\s+)?INDEX\b.*?\bON\s+(?:ONLY\s+)?{_NAME}", "SHARE", ""),
        (
            rf"DROP\s+INDEX\s+CONCURRENTLY\s+(?:IF\s+EXISTS\s+)?{_NAME}",
            "SHARE UPDATE EXCLUSIVE",
            "index; waits for older transactions to end",
        ),
        (rf"DROP\s+INDEX\s+(?:IF\s+EXISTS\s+)?{_NAME}", "ACCESS EXCLUSIVE", "index"),
        (
            rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}\s+VALIDATE\s+CONSTRAINT\b",
            "SHARE UPDATE EXCLUSIVE",
            "reads every row",
        ),
        (
            rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}(?=.*\bGENERATED\s+ALWAYS\s+AS\b.*\bSTORED\b)",
            "ACCESS EXCLUSIVE",
            "rewrites the table, holding the lock as long as that takes",
        ),
        (
            rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}(?=.*\bTYPE\b)",
            "ACCESS EXCLUSIVE",
            "may rewrite the table, holding the lock as long as that takes",
        ),
        (
            rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}(?=.*\bADD\s+CONSTRAINT\b)(?!.*\bNOT\s+VALID\b)",
            "ACCESS EXCLUSIVE",
            "checks every row while it holds the lock",
        ),
        (rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}", "ACCESS EXCLUSIVE", ""),
        (rf"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_NAME}", "ACCESS EXCLUSIVE", ""),
        (rf"TRUNCATE\s+(?:TABLE\s+)?{_NAME}", "ACCESS EXCLUSIVE", ""),
        (rf"CREATE\s+(?:CONSTRAINT\s+)?TRIGGER\b.*?\bON\s+{_NAME}", "SHARE ROW EXCLUSIVE", ""),
        (rf"DROP\s+TRIGGER\s+(?:IF\s+EXISTS\s+)?\S+\s+ON\s+{_NAME}", "ACCESS EXCLUSIVE", ""),
        (rf"LOCK\s+(?:TABLE\s+)?{_NAME}\s+IN\s+([A-Z ]+?)\s+MODE", "", ""),
        (rf"UPDATE\s+(?:ONLY\s+)?{_NAME}\s+(?:AS\s+\w+\s+)?SET\b", "ROW EXCLUSIVE", ""),
        (rf"DELETE\s+FROM\s+(?:ONLY\s+)?{_NAME}", "ROW EXCLUSIVE", ""),
        (rf"INSERT\s+INTO\s+{_NAME}", "ROW EXCLUSIVE", ""),
        (rf"(?:ANALYZE|VACUUM)\s+(?:\([^)]*\)\s+)?{_NAME}", "SHARE UPDATE EXCLUSIVE", ""),
        (rf"COMMENT\s+ON\s+COLUMN\s+{_NAME}\.\w+", "SHARE UPDATE EXCLUSIVE", ""),
        (rf"COMMENT\s+ON\s+TABLE\s+{_NAME}", "SHARE UPDATE EXCLUSIVE", ""),
        (rf"COMMENT\s+ON\s+INDEX\s+{_NAME}", "SHARE UPDATE EXCLUSIVE", "index"),
        (
            rf"COMMENT\s+ON\s+(?:CONSTRAINT|TRIGGER)\s+\S+\s+ON\s+{_NAME}",
            "SHARE UPDATE EXCLUSIVE",
            "",
        ),
    )
)

# Where a command can start: after a semicolon, a quote (the commands a DO block
# runs with EXECUTE are strings) or a PL/pgSQL block word.
_COMMAND_BOUNDARY = re.compile(r"[;'$]|\b(?:BEGIN|THEN|ELSE|LOOP|DO)\b", re.IGNORECASE)


def statement_locks(statement: str) -> list[str]:
    """The locks ``statement`` takes on tables, one line each, in the order it takes them.

    ``"ACCESS EXCLUSIVE on customers (blocks reads and writes)"``; an empty list
    for a statement that takes none a query on a table could wait behind.
    """
    text = re.sub(r"--[^\n]*", "", statement)
    found: list[str] = []
    for command in _COMMAND_BOUNDARY.split(text):
        for pattern, mode, note in _RULES:
            match = pattern.match(command.strip())
            if match:
                lock = mode or " ".join(match.group(2).upper().split())
                name = match.group(1).replace('"', "")
                subject = f"the table of index {name}" if note.startswith("index") else name
                remark = note.removeprefix("index").removeprefix("; ")
                what = "; ".join(part for part in (_BLOCKS.get(lock, ""), remark) if part)
                line = f"{lock} on {subject}" + (f" ({what})" if what else "")
                if line not in found:
                    found.append(line)
                break
    return found
