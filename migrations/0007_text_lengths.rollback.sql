-- Undo 0007_text_lengths, statement by statement in reverse order.

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

COMMENT ON COLUMN customers.notes IS 'Optional free-text notes by the shop''s staff.';
COMMENT ON COLUMN customers.address IS 'Optional postal address, free text.';

ALTER TABLE customers
    DROP CONSTRAINT customers_notes_length,
    DROP CONSTRAINT customers_address_length;
