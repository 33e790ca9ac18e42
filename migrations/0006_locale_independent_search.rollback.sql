-- Undo 0006_locale_independent_search: the generated columns fold with
-- lower() by the database's ctype again. Rewrites the table, as the
-- migration did, and for the same reason.
-- squawk-ignore-file adding-field-with-default,require-concurrent-index-creation

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

ALTER TABLE customers
    DROP COLUMN search_text,
    DROP COLUMN name_key;

ALTER TABLE customers
    ADD COLUMN name_key text COLLATE "C" NOT NULL
        GENERATED ALWAYS AS (lower(name)) STORED,
    ADD COLUMN search_text text NOT NULL
        GENERATED ALWAYS AS (
            lower(name) || E'\x1f' || coalesce(lower(email), '') || E'\x1f'
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

COMMENT ON COLUMN customers.name_key IS 'lower(name) in the C collation (generated): the order of lists and search results.';
COMMENT ON COLUMN customers.search_text IS 'Lower-case name, e-mail and phone digits, separated by U+001F (generated): what search matches.';
COMMENT ON INDEX customers_search_text_trgm_idx IS 'Trigram index on search_text: substring search over name, e-mail and phone digits.';
COMMENT ON INDEX customers_search_order_idx IS 'Lists and search results in name order (name_key, id); carries is_active and search_text so search can filter from the index alone.';

DROP COLLATION customer_dal_fold;
