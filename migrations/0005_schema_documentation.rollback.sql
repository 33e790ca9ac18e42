-- Undo 0005_schema_documentation, statement by statement in reverse order.
-- COMMENT ... IS NULL removes a comment; the two table comments get back
-- their earlier text.

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

COMMENT ON TRIGGER customers_touch_updated_at ON customers IS NULL;

COMMENT ON CONSTRAINT customers_email_shape ON customers IS NULL;
COMMENT ON CONSTRAINT customers_phone_secondary_min_digits ON customers IS NULL;
COMMENT ON CONSTRAINT customers_phone_min_digits ON customers IS NULL;
COMMENT ON CONSTRAINT customers_name_not_blank ON customers IS NULL;
COMMENT ON CONSTRAINT customers_created_by_id_fkey ON customers IS NULL;
COMMENT ON CONSTRAINT customers_pkey ON customers IS NULL;
COMMENT ON CONSTRAINT users_full_name_length ON users IS NULL;
COMMENT ON CONSTRAINT users_full_name_not_blank ON users IS NULL;
COMMENT ON CONSTRAINT users_pkey ON users IS NULL;

COMMENT ON INDEX customers_created_by_id_idx IS NULL;
COMMENT ON INDEX customers_search_order_idx IS NULL;
COMMENT ON INDEX customers_search_text_trgm_idx IS NULL;
COMMENT ON INDEX customers_phone_secondary_digits_idx IS NULL;
COMMENT ON INDEX customers_phone_digits_idx IS NULL;
COMMENT ON INDEX customers_active_phone_key IS NULL;
COMMENT ON INDEX customers_pkey IS NULL;
COMMENT ON INDEX users_email_lower_key IS NULL;
COMMENT ON INDEX users_pkey IS NULL;

COMMENT ON TABLE customers IS 'The shop''s customers. Soft-deleted rows keep is_active = false; the balance is not stored (a ledger computes it).';
COMMENT ON TABLE users IS 'People who use the shop''s system; owned by the auth system, referenced by customers.created_by_id.';

COMMENT ON SCHEMA customer_dal_migrations IS NULL;

DO $$
BEGIN
    IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'pg_trgm'), 'pg_extension')
       LIKE '%created by customer_dal migration 0002_customers%'
       AND (SELECT extnamespace FROM pg_extension WHERE extname = 'pg_trgm')
           = to_regnamespace('extensions') THEN
        ALTER EXTENSION pg_trgm SET SCHEMA public;
    END IF;
    IF obj_description(to_regnamespace('extensions'), 'pg_namespace')
       LIKE '%created by customer_dal migration 0005_schema_documentation%' THEN
        DROP SCHEMA extensions;  -- RESTRICT: refuses if anything else lives there
    END IF;
END
$$;

ALTER TABLE users DROP CONSTRAINT users_email_shape;
