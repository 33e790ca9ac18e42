-- Undo 0002_customers, statement by statement in reverse order.
-- Indexes, constraints and COMMENTs go with the table and the function.

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

DROP TRIGGER customers_touch_updated_at ON customers;

DROP FUNCTION customers_touch_updated_at();

DROP TABLE customers;

DO $$
BEGIN
    IF obj_description((SELECT oid FROM pg_extension WHERE extname = 'pg_trgm'), 'pg_extension')
       LIKE '%created by customer_dal migration 0002_customers%' THEN
        DROP EXTENSION pg_trgm;
    END IF;
END
$$;
