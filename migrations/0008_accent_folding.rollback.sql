-- Undo 0008_accent_folding, as safely as it was done: indexes dropped
-- CONCURRENTLY, every statement safe to run again. Dropping the two columns
-- changes the catalog only (no rewrite), under a lock held for an instant.
-- Dropping what 0008 added is the point of this file.
-- squawk-ignore-file ban-drop-column,ban-drop-function

-- Each statement is a transaction of its own, so these are session settings
-- (customer_dal resets them when the migration ends). A statement that waits
-- longer than this for a lock gives up, and customer_dal tries it again a few
-- times, rather than queue every query on customers behind it for long.
SET lock_timeout = '500ms';

SET statement_timeout = '1h';

DROP INDEX CONCURRENTLY IF EXISTS customers_folded_order_idx;

DROP INDEX CONCURRENTLY IF EXISTS customers_search_folded_trgm_idx;

CREATE OR REPLACE FUNCTION customers_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := greatest(now(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION customers_touch_updated_at() IS 'Moves customers.updated_at forward on every UPDATE: to now(), or 1 microsecond past its old value when now() is not later. A version stamp: it never repeats and never goes back.';

DROP TRIGGER IF EXISTS customers_fold ON customers;

DROP FUNCTION IF EXISTS customers_fold();

ALTER TABLE customers
    DROP COLUMN IF EXISTS search_folded,
    DROP COLUMN IF EXISTS name_folded;

DROP FUNCTION IF EXISTS customer_dal_search_text(text, text, text, text);

DROP FUNCTION IF EXISTS customer_dal_fold_text(text);

DO $$
BEGIN
    IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'unaccent'), 'pg_extension')
       LIKE '%created by customer_dal migration 0008_accent_folding%' THEN
        DROP EXTENSION unaccent;
    END IF;
END
$$;
