-- Undo 0010_ordered_search, as safely as it was done: the index dropped
-- CONCURRENTLY, every statement safe to run again.
-- Dropping what 0010 added is the point of this file.
-- squawk-ignore-file ban-drop-function

SET lock_timeout = '500ms';

SET statement_timeout = '1h';

DROP INDEX CONCURRENTLY IF EXISTS customers_email_folded_idx;

DROP INDEX CONCURRENTLY IF EXISTS customers_search_ordered_idx;

DROP FUNCTION IF EXISTS customer_dal_name_key(text, integer);

DO $$
BEGIN
    IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'btree_gist'), 'pg_extension')
       LIKE '%created by customer_dal migration 0010_ordered_search%' THEN
        DROP EXTENSION btree_gist;
    END IF;
END
$$;
