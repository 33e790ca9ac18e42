-- The contract step of accent folding (0008 was the expand step), for when
-- no code older than 0008 runs any more: name_folded and search_folded become
-- NOT NULL (proved by a validated check first, so SET NOT NULL scans nothing
-- under its lock), the version-stamp trigger loses the backfill's exception,
-- and the indexes on name_key and search_text, which customer_dal no longer
-- reads, are dropped CONCURRENTLY. The columns name_key and search_text stay:
-- dropping them is instant, but bringing a generated column back (a rollback)
-- rewrites the table under an exclusive lock, which this project never does
-- to a live table; a later migration may drop them once no rollback is wanted.
-- Each statement commits on its own and is safe to run again.
-- transactional: false
-- depends: 0008_accent_folding

-- Each statement is a transaction of its own, so these are session settings
-- (customer_dal resets them when the migration ends). A statement that waits
-- longer than this for a lock gives up, and customer_dal tries it again a few
-- times, rather than queue every query on customers behind it for long.
SET lock_timeout = '500ms';

SET statement_timeout = '1h';

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'customers'::regclass
                     AND conname = 'customers_folded_not_null') THEN
        ALTER TABLE customers
            ADD CONSTRAINT customers_folded_not_null
                CHECK (name_folded IS NOT NULL AND search_folded IS NOT NULL) NOT VALID;
    END IF;
END
$$;

-- Reads every row under SHARE UPDATE EXCLUSIVE: reads and writes go on.
-- Validating a constraint that is valid already does nothing: safe to re-run.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE customers VALIDATE CONSTRAINT customers_folded_not_null;

-- PostgreSQL 12+ takes the validated check as proof and scans nothing, so the
-- ACCESS EXCLUSIVE lock SET NOT NULL needs is held for an instant. Setting
-- NOT NULL on a column that has it does nothing: safe to re-run.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE customers ALTER COLUMN name_folded SET NOT NULL, ALTER COLUMN search_folded SET NOT NULL;

-- The check was only the proof SET NOT NULL needed; NOT NULL now says the same.
-- squawk-ignore ban-drop-constraint
ALTER TABLE customers DROP CONSTRAINT IF EXISTS customers_folded_not_null;

CREATE OR REPLACE FUNCTION customers_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := greatest(now(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION customers_touch_updated_at() IS 'Moves customers.updated_at forward on every UPDATE: to now(), or 1 microsecond past its old value when now() is not later. A version stamp: it never repeats and never goes back.';

DROP INDEX CONCURRENTLY IF EXISTS customers_search_text_trgm_idx;

DROP INDEX CONCURRENTLY IF EXISTS customers_search_order_idx;

COMMENT ON COLUMN customers.name_key IS 'lower(name) folded by collation customer_dal_fold (generated). Not read by customer_dal since 0008 (see name_folded); kept so that rolling 0009 back never rewrites the table.';
COMMENT ON COLUMN customers.search_text IS 'Lower-case name, e-mail and phone digits (generated). Not read by customer_dal since 0008 (see search_folded); kept so that rolling 0009 back never rewrites the table.';
