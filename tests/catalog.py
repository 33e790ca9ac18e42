"""A snapshot of the user-visible catalog, to prove that a rollback leaves no trace.

Everything a migration can create, described by name and definition (never by
OID, which differs between runs). The bookkeeping schema is left out: it is
meant to outlive the application's objects.
"""

from __future__ import annotations

from typing import Any

import psycopg

from customer_dal.migrations import BOOKKEEPING_SCHEMA

# 16384 is FirstNormalObjectId: anything below it ships with PostgreSQL.
_SNAPSHOT_SQL = """
WITH user_namespaces AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', %(bookkeeping)s)
      AND nspname NOT LIKE 'pg\\_%%'
)
SELECT 'schema', nspname, '' FROM user_namespaces
UNION ALL
SELECT 'relation', n.nspname || '.' || c.relname, c.relkind::text
FROM pg_class c JOIN user_namespaces n ON n.oid = c.relnamespace
UNION ALL
SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname,
       format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
       || ' generated=' || a.attgenerated::text || ' identity=' || a.attidentity::text
       || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN user_namespaces n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE connamespace IN (SELECT oid FROM user_namespaces)
UNION ALL
SELECT 'index', indexname, indexdef FROM pg_indexes
WHERE schemaname IN (SELECT nspname FROM user_namespaces)
UNION ALL
SELECT 'function', p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', ''
FROM pg_proc p WHERE p.pronamespace IN (SELECT oid FROM user_namespaces)
UNION ALL
SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
UNION ALL
SELECT 'type', n.nspname || '.' || t.typname, t.typtype::text
FROM pg_type t JOIN user_namespaces n ON n.oid = t.typnamespace
UNION ALL
SELECT 'extension', extname, extversion FROM pg_extension
UNION ALL
SELECT 'operator class', opcname, '' FROM pg_opclass WHERE oid >= 16384
UNION ALL
SELECT 'comment', pg_describe_object(classoid, objoid, objsubid), description
FROM pg_description WHERE objoid >= 16384
ORDER BY 1, 2, 3
"""


def catalog_snapshot(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as connection:
        return connection.execute(_SNAPSHOT_SQL, {"bookkeeping": BOOKKEEPING_SCHEMA}).fetchall()
