-- Undo 0009_accent_folding_contract, as safely as it was done: the indexes
-- come back CONCURRENTLY, the columns become nullable again (a catalog change
-- under a lock held for an instant). Every statement is safe to run again.
-- Making the columns nullable again is what undoing 0009 means, and dropping
-- NOT NULL where it is gone does nothing, so the last statement can re-run.
-- squawk-ignore-file ban-drop-not-null,prefer-robust-stmts

-- Each statement is a transaction of its own, so these are session settings
-- (customer_dal resets them when the migration ends). A statement that waits
-- longer than this for a lock gives up, and customer_dal tries it again a few
-- times, rather than queue every query on customers behind it for long.
SET lock_timeout = '500ms';

SET statement_timeout = '1h';

COMMENT ON COLUMN customers.name_key IS 'name in lower case (generated, folded by collation customer_dal_fold), compared in the C collation: the order of lists and search results.';
COMMENT ON COLUMN customers.search_text IS 'Lower-case name and e-mail (folded by collation customer_dal_fold) and phone digits, separated by U+001F (generated): what search matches.';

-- pg_trgm's schema on this session's search_path, as in 0008 (customer_dal
-- resets the session after the migration).
SELECT set_config('search_path', format('%s, %I', current_setting('search_path'), n.nspname), false)
FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_trgm';

-- A concurrent build queues no reader or writer; it waits for older
-- transactions to end, and giving up would throw the build away: wait longer.
SET lock_timeout = '5min';

CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_search_order_idx
    ON customers (name_key, id) INCLUDE (is_active, search_text);

CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_search_text_trgm_idx
    ON customers USING gin (search_text gin_trgm_ops);

COMMENT ON INDEX customers_search_text_trgm_idx IS 'Trigram index on search_text: substring search over name, e-mail and phone digits.';
COMMENT ON INDEX customers_search_order_idx IS 'Lists and search results in name order (name_key, id); carries is_active and search_text so search can filter from the index alone.';

SET lock_timeout = '500ms';

CREATE OR REPLACE FUNCTION customers_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.search_folded IS NULL AND NEW.search_folded IS NOT NULL
       AND (NEW.name, NEW.phone, NEW.phone_secondary, NEW.email, NEW.address, NEW.notes,
            NEW.is_active, NEW.created_by_id, NEW.created_at, NEW.updated_at)
           IS NOT DISTINCT FROM
           (OLD.name, OLD.phone, OLD.phone_secondary, OLD.email, OLD.address, OLD.notes,
            OLD.is_active, OLD.created_by_id, OLD.created_at, OLD.updated_at) THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := greatest(now(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION customers_touch_updated_at() IS 'Moves customers.updated_at forward on every UPDATE: to now(), or 1 microsecond past its old value when now() is not later. A version stamp: it never repeats and never goes back. An UPDATE that only fills in search_folded (the backfill of 0008) leaves it.';

ALTER TABLE customers
    ALTER COLUMN search_folded DROP NOT NULL,
    ALTER COLUMN name_folded DROP NOT NULL;
