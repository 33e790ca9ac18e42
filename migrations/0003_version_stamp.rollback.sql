-- Undo 0003_version_stamp: updated_at is plain now() again.

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

CREATE OR REPLACE FUNCTION customers_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION customers_touch_updated_at() IS 'Sets customers.updated_at to now() on every UPDATE of a customer.';
COMMENT ON COLUMN customers.updated_at IS 'When the row last changed; kept by trigger customers_touch_updated_at.';
