-- Search ignores case in every alphabet whatever the database's LC_CTYPE.
-- lower() folds by the database's ctype: under LC_CTYPE 'C' (common on
-- managed and Docker servers) it folds ASCII only, so "MÜLLER" missed
-- "Jürgen Müller". The generated columns and the queries now fold with the
-- collation customer_dal_fold, which knows Unicode on any server: the builtin
-- C.UTF-8 provider on PostgreSQL 17+, ICU's root locale before that.
-- The two generated columns are rebuilt, which rewrites the table under an
-- exclusive lock (about 10 s per million customers on 2 cores).
-- depends: 0005_schema_documentation

-- Rebuilding the generated columns is the point (every row's folded text is
-- computed again), and their indexes are built while the table is locked for
-- that rewrite anyway, so CONCURRENTLY would gain nothing.
-- squawk-ignore-file ban-drop-column,adding-field-with-default,require-concurrent-index-creation

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        CREATE COLLATION customer_dal_fold (provider = builtin, locale = 'C.UTF-8');
    ELSE
        BEGIN
            CREATE COLLATION customer_dal_fold (provider = icu, locale = 'und');
        EXCEPTION WHEN feature_not_supported THEN
            RAISE EXCEPTION 'PostgreSQL % was built without ICU, so it cannot fold the case of non-ASCII text whatever the database''s LC_CTYPE: use PostgreSQL 17+ or a build with ICU', current_setting('server_version')
                USING ERRCODE = 'feature_not_supported';
        END;
    END IF;
END
$$;

COMMENT ON COLLATION customer_dal_fold IS 'Unicode case folding for search, independent of the database''s LC_CTYPE: builtin C.UTF-8 (PostgreSQL 17+) or ICU root (und).';

-- Dropping the columns drops their two indexes (and comments); all come back below.
ALTER TABLE customers
    DROP COLUMN search_text,
    DROP COLUMN name_key;

ALTER TABLE customers
    ADD COLUMN name_key text COLLATE "C" NOT NULL
        GENERATED ALWAYS AS (lower(name COLLATE customer_dal_fold)) STORED,
    ADD COLUMN search_text text NOT NULL
        GENERATED ALWAYS AS (
            lower(name COLLATE customer_dal_fold) || E'\x1f'
            || coalesce(lower(email COLLATE customer_dal_fold), '') || E'\x1f'
            || regexp_replace(phone, '[^0-9]', '', 'g') || E'\x1f'
            || coalesce(regexp_replace(phone_secondary, '[^0-9]', '', 'g'), '')
        ) STORED;

-- pg_trgm lives in schema extensions when customer_dal created it (0005), or
-- wherever a DBA put it: name its operator class by the schema it is in.
DO $$
BEGIN
    EXECUTE format(
        'CREATE INDEX customers_search_text_trgm_idx ON customers USING gin (search_text %I.gin_trgm_ops)',
        (SELECT n.nspname FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_trgm'));
END
$$;

CREATE INDEX customers_search_order_idx
    ON customers (name_key, id) INCLUDE (is_active, search_text);

COMMENT ON COLUMN customers.name_key IS 'name in lower case (generated, folded by collation customer_dal_fold), compared in the C collation: the order of lists and search results.';
COMMENT ON COLUMN customers.search_text IS 'Lower-case name and e-mail (folded by collation customer_dal_fold) and phone digits, separated by U+001F (generated): what search matches.';
COMMENT ON INDEX customers_search_text_trgm_idx IS 'Trigram index on search_text: substring search over name, e-mail and phone digits.';
COMMENT ON INDEX customers_search_order_idx IS 'Lists and search results in name order (name_key, id); carries is_active and search_text so search can filter from the index alone.';
