-- Undo 0002_customers, statement by statement in reverse order.
-- Indexes, constraints and COMMENTs go with the table and the function.

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
