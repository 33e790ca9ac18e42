-- updated_at becomes a version stamp for optimistic concurrency
-- (update/soft_delete/restore with expected_updated_at): it strictly increases
-- on every UPDATE, even for two updates in one transaction (now() stands
-- still) or within one microsecond.
-- depends: 0002_customers

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

CREATE OR REPLACE FUNCTION customers_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := greatest(now(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION customers_touch_updated_at() IS 'Moves customers.updated_at forward on every UPDATE: to now(), or 1 microsecond past its old value when now() is not later. A version stamp: it never repeats and never goes back.';
COMMENT ON COLUMN customers.updated_at IS 'When the row last changed, and its version: strictly increases on every UPDATE (trigger customers_touch_updated_at); compare it to detect concurrent edits.';
