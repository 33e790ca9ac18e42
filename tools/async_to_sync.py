"""Generate the sync repositories from their async originals: ``make generate``.

customer_dal serves blocking and asyncio callers from one implementation, the
way psycopg keeps ``Connection`` and ``AsyncConnection`` in step: the code is
written once, async (``src/customer_dal/*_async.py``), and this script writes
the sync twin of each module by rewriting its syntax tree. A test
(``tests/test_generated.py``) regenerates every twin and fails when a
committed one differs, so the two cannot drift apart.

Why generate code rather than a sans-IO core (the logic as generators that
yield "run this query", driven by a sync and an async runner)? The repository
logic is mostly round trips interleaved with small decisions: search tiers with
an early exit and a fallback, a follow-up query when a constraint fires or a
versioned write misses, savepoints cleaned up in ``except`` paths. As a
protocol of yielded commands each of those would grow a message type, and
errors would have to be thrown back into generators. Generated code stays plain
psycopg code that reads top to bottom; mypy checks both flavours as they run;
and the sync hot path keeps its exact shape (per-thread cursors, no generator
driven per statement: on a 0.1 ms call that overhead shows). The pure decisions
that need no I/O live in shared modules (``customer_params``), and the little
that must differ by hand sits side by side in ``flavours``.

The transformation (libcst, which keeps comments and layout):

* ``async def``/``async with``/``async for`` lose ``async``; ``await x`` becomes ``x``;
* ``Awaitable[T]`` becomes ``T`` (and ``Awaitable`` leaves the imports);
* the names in :data:`NAMES` are renamed wherever they appear, in identifiers
  and, as whole words, in strings and comments (docstrings and messages name
  the classes), where ``async with`` also becomes ``with``;
* ruff then sorts the imports and formats the result, as ``make format`` would.

Usage: ``python tools/async_to_sync.py`` rewrites every twin;
``python tools/async_to_sync.py --check`` only says which are stale.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import libcst as cst

ROOT = Path(__file__).resolve().parent.parent
# Each async original and its generated sync twin, relative to ROOT.
MODULES = {
    "src/customer_dal/calls_async.py": "src/customer_dal/calls.py",
    "src/customer_dal/customers_async.py": "src/customer_dal/customers.py",
    "src/customer_dal/users_async.py": "src/customer_dal/users.py",
    "src/customer_dal/pools_async.py": "src/customer_dal/pools.py",
    "src/customer_dal/replicas_async.py": "src/customer_dal/replicas.py",
    "src/customer_dal/routing_async.py": "src/customer_dal/routing.py",
}
NAMES = {
    "AsyncConnection": "Connection",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncCursor": "Cursor",
    "AsyncRawCursor": "RawCursor",
    "AsyncCursors": "Cursors",
    "AsyncCustomerRepository": "CustomerRepository",
    "AsyncPool": "Pool",
    "AsyncPooledCustomerRepository": "PooledCustomerRepository",
    "AsyncPooledUserRepository": "PooledUserRepository",
    "AsyncReadReplica": "ReadReplica",
    "AsyncUserRepository": "UserRepository",
    "async_pool": "pool",
    "calls_async": "calls",
    "customers_async": "customers",
    "pools_async": "pools",
    "replicas_async": "replicas",
    "routing_async": "routing",
    "users_async": "users",
}
# What binds tighter than any operator: it needs no parentheses of its own.
_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)
_ASYNC_WITH = re.compile(r"\basync with ")
_WORDS = re.compile(r"\b(" + "|".join(map(re.escape, NAMES)) + r")\b")


class AsyncToSync(cst.CSTTransformer):
    """The syntax rewrites listed in the module docstring."""

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        return updated_node.with_changes(asynchronous=None)

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        return updated_node.with_changes(asynchronous=None)

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.For:
        return updated_node.with_changes(asynchronous=None)

    def leave_Await(self, original_node: cst.Await, updated_node: cst.Await) -> cst.BaseExpression:
        awaited = updated_node.expression
        if isinstance(awaited, _ATOMS):  # (await f())[0] needs parentheses; f()[0] does not
            return awaited
        return awaited.with_changes(
            lpar=[*updated_node.lpar, *awaited.lpar], rpar=[*awaited.rpar, *updated_node.rpar]
        )

    def leave_Subscript(
        self, original_node: cst.Subscript, updated_node: cst.Subscript
    ) -> cst.BaseExpression:
        value = updated_node.value
        if isinstance(value, cst.Name) and value.value == "Awaitable":
            [element] = updated_node.slice
            if isinstance(element.slice, cst.Index):
                return element.slice.value
            raise ValueError(
                f"Awaitable takes one type: {cst.Module([]).code_for_node(updated_node)}"
            )
        return updated_node

    def leave_ImportFrom(
        self, original_node: cst.ImportFrom, updated_node: cst.ImportFrom
    ) -> cst.ImportFrom | cst.RemovalSentinel:
        if isinstance(updated_node.names, cst.ImportStar):
            return updated_node
        kept = [alias for alias in updated_node.names if alias.evaluated_name != "Awaitable"]
        if not kept:
            return cst.RemoveFromParent()
        kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated_node.with_changes(names=kept)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return updated_node.with_changes(value=NAMES.get(updated_node.value, updated_node.value))

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.SimpleString:
        return updated_node.with_changes(value=_in_words(updated_node.value))

    def leave_FormattedStringText(
        self, original_node: cst.FormattedStringText, updated_node: cst.FormattedStringText
    ) -> cst.FormattedStringText:
        return updated_node.with_changes(value=_in_words(updated_node.value))

    def leave_Comment(self, original_node: cst.Comment, updated_node: cst.Comment) -> cst.Comment:
        return updated_node.with_changes(value=_in_words(updated_node.value))


def _in_words(text: str) -> str:
    """Prose and messages: the names renamed, and ``async with`` is ``with``."""
    return _ASYNC_WITH.sub("with ", _WORDS.sub(lambda match: NAMES[match[1]], text))


def generate(source: str) -> str:
    """The generated sync module for the async module at ``source`` (relative to ROOT)."""
    tree = cst.parse_module((ROOT / source).read_text(encoding="utf-8"))
    synced = tree.visit(AsyncToSync())
    header = cst.EmptyLine(
        comment=cst.Comment(f"# generated from {source} by tools/async_to_sync.py; do not edit")
    )
    synced = synced.with_changes(header=[header, *synced.header])
    return _ruff(synced.code, MODULES[source])


def _ruff(code: str, path: str) -> str:
    """``code`` with its imports sorted and formatted by the project's ruff settings."""
    for command in (["check", "--fix", "--select", "I", "--quiet"], ["format", "--quiet"]):
        code = subprocess.run(  # noqa: S603 - this interpreter's ruff, our own text
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", path, "-"],
            input=code,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return code


def stale() -> list[str]:
    """The generated modules that differ from what their async original generates."""
    return [
        target
        for source, target in MODULES.items()
        if (ROOT / target).read_text(encoding="utf-8") != generate(source)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only list stale modules")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        for target in outdated:
            print(f"{target} is stale: run make generate", file=sys.stderr)
        return 1 if outdated else 0
    for source, target in MODULES.items():
        (ROOT / target).write_text(generate(source), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
