-- The schema documents itself for a DBA reading it in psql (\d+, \di+, \dd):
-- a comment on every index, constraint and trigger, and on the bookkeeping
-- schema; the table comments corrected (there is no ledger, and no auth
-- system owns users). users.email gets the shape check customers.email has.
-- pg_trgm, when customer_dal created it, moves to a schema of its own so
-- \df public lists only the project's functions (the trigram index keeps
-- its operator class: relocating an extension does not touch indexes).
-- depends: 0004_text_hygiene

-- users is small (the shop's staff): validating its new check under the lock costs nothing.
-- squawk-ignore-file constraint-missing-not-valid

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

ALTER TABLE users
    ADD CONSTRAINT users_email_shape
        CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$');

-- A role that is not a superuser may create pg_trgm (a trusted extension) but
-- does not own its functions, so it cannot move them: pg_trgm then stays in
-- public, and the migration goes on (sql/roles.sql creates it in extensions).
DO $$
BEGIN
    IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'pg_trgm'), 'pg_extension')
       LIKE '%created by customer_dal migration 0002_customers%' THEN
        BEGIN
            IF to_regnamespace('extensions') IS NULL THEN
                CREATE SCHEMA extensions;
                COMMENT ON SCHEMA extensions IS 'Extensions'' objects, out of public; created by customer_dal migration 0005_schema_documentation, dropped by its rollback';
            END IF;
            ALTER EXTENSION pg_trgm SET SCHEMA extensions;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm stays in schema public: only a superuser can move it (%)', SQLERRM;
        END;
    END IF;
END
$$;

COMMENT ON SCHEMA customer_dal_migrations IS 'customer_dal''s migration bookkeeping: yoyo''s tables (_yoyo_migration, _yoyo_log, ...) and migration_checksum. Written by make migrate/rollback only; read by make status.';

COMMENT ON TABLE users IS 'People who use the shop''s system; customers.created_by_id names the one who registered a customer. Minimal: customer_dal creates and reads them.';
COMMENT ON TABLE customers IS 'The shop''s customers. Soft-deleted rows keep is_active = false. No balance is stored.';

COMMENT ON INDEX users_pkey IS 'Primary key of users.';
COMMENT ON INDEX users_email_lower_key IS 'One user per e-mail address, ignoring case (lower(email)).';
COMMENT ON INDEX customers_pkey IS 'Primary key of customers.';
COMMENT ON INDEX customers_active_phone_key IS 'No two active customers share a primary phone, compared by digits; soft-deleted rows free the number.';
COMMENT ON INDEX customers_phone_digits_idx IS 'Exact look-up by primary phone digits (get_by_phone, search''s exact-phone tier), active or not.';
COMMENT ON INDEX customers_phone_secondary_digits_idx IS 'Exact look-up by secondary phone digits (get_by_phone, search''s exact-phone tier).';
COMMENT ON INDEX customers_search_text_trgm_idx IS 'Trigram index on search_text: substring search over name, e-mail and phone digits.';
COMMENT ON INDEX customers_search_order_idx IS 'Lists and search results in name order (name_key, id); carries is_active and search_text so search can filter from the index alone.';
COMMENT ON INDEX customers_created_by_id_idx IS 'Finds a user''s customers, so deleting a user (ON DELETE SET NULL) is no full scan.';

COMMENT ON CONSTRAINT users_pkey ON users IS 'Primary key of users.';
COMMENT ON CONSTRAINT users_full_name_not_blank ON users IS 'full_name has a character other than white space.';
COMMENT ON CONSTRAINT users_full_name_length ON users IS 'full_name has at most 200 characters.';
COMMENT ON CONSTRAINT users_email_shape ON users IS 'email, when given, has the shape of an address (one @, a dot in the domain, no spaces); the application checks it fully.';
COMMENT ON CONSTRAINT customers_pkey ON customers IS 'Primary key of customers.';
COMMENT ON CONSTRAINT customers_created_by_id_fkey ON customers IS 'created_by_id names a user; deleting the user sets it to NULL (the customer outlives the clerk).';
COMMENT ON CONSTRAINT customers_name_not_blank ON customers IS 'name has a character other than white space.';
COMMENT ON CONSTRAINT customers_phone_min_digits ON customers IS 'phone has at least 7 digits.';
COMMENT ON CONSTRAINT customers_phone_secondary_min_digits ON customers IS 'phone_secondary, when given, has at least 7 digits.';
COMMENT ON CONSTRAINT customers_email_shape ON customers IS 'email, when given, has the shape of an address (one @, a dot in the domain, no spaces); the application checks it fully.';

COMMENT ON TRIGGER customers_touch_updated_at ON customers IS 'Before every UPDATE: moves updated_at forward (function customers_touch_updated_at).';
