-- Search forgives accents: "muller" finds "Müller", "dang" finds "Đặng",
-- "Müller" finds "Muller". The expand step, made on a live table without
-- rewriting it: two plain columns (name_folded, search_folded) that a trigger
-- fills on every write, a backfill of the existing rows in short batches,
-- then their indexes built CONCURRENTLY. Folding is lower(), by collation
-- customer_dal_fold (0006), then the unaccent contrib module's rules, then
-- lower() again (unaccent writes "ẞ" as "SS"). The old generated columns
-- name_key and search_text and their indexes stay for code that predates this
-- migration; 0009 contracts. Each statement commits on its own and is safe to
-- run again: customer_dal runs it under lock_timeout with bounded retries and
-- marks the migration incomplete until the last one is done.
-- transactional: false
-- depends: 0007_text_lengths

-- Each statement is a transaction of its own, so these are session settings
-- (customer_dal resets them when the migration ends). A statement that waits
-- longer than this for a lock gives up, and customer_dal tries it again a few
-- times, rather than queue every query on customers behind it for long.
SET lock_timeout = '500ms';

SET statement_timeout = '1h';

-- unaccent is a trusted extension: a database owner that is no superuser may
-- create it. Put it beside pg_trgm in schema extensions when that schema
-- exists and we may create in it (0005), else in the current schema; mark it,
-- so the rollback drops it only if this migration created it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') THEN
        IF to_regnamespace('extensions') IS NOT NULL
           AND has_schema_privilege('extensions', 'CREATE') THEN
            CREATE EXTENSION unaccent SCHEMA extensions;
        ELSE
            CREATE EXTENSION unaccent;
        END IF;
        COMMENT ON EXTENSION unaccent IS 'removes accents for customer search; created by customer_dal migration 0008_accent_folding, dropped by its rollback';
    END IF;
END
$$;

-- unaccent() is STABLE (its dictionary could change), so no index or
-- generated column could use it: this wrapper names the function and its
-- dictionary by the schema unaccent lives in, found now, and the body is
-- parsed now (a SQL-standard body), so no search_path can change what it
-- calls. It is IMMUTABLE on the understanding that unaccent.rules is not
-- edited; if it were, the backfill below must run again.
DO $$
DECLARE
    schema_name name := (SELECT n.nspname FROM pg_extension AS e
                         JOIN pg_namespace AS n ON n.oid = e.extnamespace
                         WHERE e.extname = 'unaccent');
BEGIN
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION customer_dal_fold_text(text) RETURNS text '
        'LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE '
        'RETURN lower(%1$I.unaccent(%2$L::regdictionary, lower($1 COLLATE %3$I.customer_dal_fold)) '
        'COLLATE %3$I.customer_dal_fold)',
        schema_name, format('%I.unaccent', schema_name),
        (SELECT n.nspname FROM pg_collation AS c JOIN pg_namespace AS n ON n.oid = c.collnamespace
         WHERE c.collname = 'customer_dal_fold'));
END
$$;

COMMENT ON FUNCTION customer_dal_fold_text(text) IS 'Text as search compares it: lower case in every alphabet (collation customer_dal_fold), accents removed (unaccent), lower case again.';

-- What search matches, in one string: name and e-mail folded, both phones'
-- digits, separated by U+001F (which a search query may not contain).
CREATE OR REPLACE FUNCTION customer_dal_search_text(name text, email text, phone text, phone_secondary text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN customer_dal_fold_text(name) || E'\x1f'
       || coalesce(customer_dal_fold_text(email), '') || E'\x1f'
       || regexp_replace(phone, '[^0-9]', '', 'g') || E'\x1f'
       || coalesce(regexp_replace(phone_secondary, '[^0-9]', '', 'g'), '');

COMMENT ON FUNCTION customer_dal_search_text(text, text, text, text) IS 'customers.search_folded of a row: folded name and e-mail and the phones'' digits, separated by U+001F.';

-- Nullable and without a default: adding them changes the catalog only, no
-- row is rewritten (0009 makes them NOT NULL once every row has them).
ALTER TABLE customers
    ADD COLUMN IF NOT EXISTS name_folded text COLLATE "C",
    ADD COLUMN IF NOT EXISTS search_folded text COLLATE "C";

COMMENT ON COLUMN customers.name_folded IS 'name folded by customer_dal_fold_text, compared in the C collation: the order of lists and search results, and what a name prefix matches. Kept by trigger customers_fold.';
COMMENT ON COLUMN customers.search_folded IS 'customer_dal_search_text(name, email, phone, phone_secondary): what search matches. Kept by trigger customers_fold.';

CREATE OR REPLACE FUNCTION customers_fold() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.name_folded := customer_dal_fold_text(NEW.name);
    NEW.search_folded := customer_dal_search_text(NEW.name, NEW.email, NEW.phone, NEW.phone_secondary);
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION customers_fold() IS 'Sets customers.name_folded and search_folded from the columns they fold.';

-- From here on every write keeps the new columns; the backfill does the rest.
DROP TRIGGER IF EXISTS customers_fold ON customers;

CREATE TRIGGER customers_fold
    BEFORE INSERT OR UPDATE OF name, email, phone, phone_secondary ON customers
    FOR EACH ROW
    EXECUTE FUNCTION customers_fold();

COMMENT ON TRIGGER customers_fold ON customers IS 'Before every INSERT and every UPDATE of name, email or a phone: recomputes name_folded and search_folded (function customers_fold).';

-- The backfill must not move updated_at: it is each customer's version, and a
-- clerk holding the old one would be told someone else changed the customer.
-- An UPDATE that only fills the folded columns in is no change of the customer.
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

-- The backfill: 1,000 customers per transaction in id order, each batch
-- committed at once, so a writer changing a customer in the batch waits for
-- one short transaction at most (a tenth of a second or so), never for the
-- whole backfill. Only rows not folded yet are written: a re-run skips what
-- is done.
DO $$
DECLARE
    low bigint := (SELECT min(id) FROM customers);
    high bigint := (SELECT max(id) FROM customers);
BEGIN
    WHILE low <= high LOOP
        UPDATE customers
        SET name_folded = customer_dal_fold_text(name),
            search_folded = customer_dal_search_text(name, email, phone, phone_secondary)
        WHERE id >= low AND id < low + 1000
          AND search_folded IS NULL;
        COMMIT;
        low := low + 1000;
    END LOOP;
END
$$;

-- pg_trgm lives in schema extensions when customer_dal created it (0005), or
-- wherever a DBA put it, and CREATE INDEX CONCURRENTLY cannot run in the DO
-- block 0006 used to name it: put its schema on this session's search_path
-- (customer_dal resets the session after the migration).
SELECT set_config('search_path', format('%s, %I', current_setting('search_path'), n.nspname), false)
FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_trgm';

-- A concurrent build's lock (SHARE UPDATE EXCLUSIVE) queues no reader or
-- writer; what it waits for is older transactions to end. Waiting costs
-- nobody, and giving up would throw the build away: wait longer.
SET lock_timeout = '5min';

CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_search_folded_trgm_idx
    ON customers USING gin (search_folded gin_trgm_ops);

CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_folded_order_idx
    ON customers (name_folded, id) INCLUDE (is_active, search_folded);

COMMENT ON INDEX customers_search_folded_trgm_idx IS 'Trigram index on search_folded: substring search over folded name and e-mail and phone digits.';
COMMENT ON INDEX customers_folded_order_idx IS 'Lists and search results in folded-name order (name_folded, id); carries is_active and search_folded so search can filter from the index alone.';

-- The planner needs the new columns' statistics to choose between the walk
-- and the trigram index.
SET lock_timeout = '500ms';

ANALYZE customers;
