-- address and notes get a length limit (1,000 and 100,000 characters), as
-- the models have: every row the library accepts then fits one CSV record
-- that import reads back, so export then import is an exact round trip.
-- Rows that are longer make this migration fail, saying how many and how to
-- list them: data is never cut behind anyone's back.
-- depends: 0006_locale_independent_search

-- The checks are validated as they are added, under ALTER TABLE's lock:
-- well under a second per million customers (length() reads no toast).
-- squawk-ignore-file constraint-missing-not-valid

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

DO $$
DECLARE
    too_long bigint;
BEGIN
    SELECT count(*) INTO too_long FROM customers
    WHERE length(address) > 1000 OR length(notes) > 100000;
    IF too_long > 0 THEN
        RAISE EXCEPTION '% customer(s) have an address over 1,000 or notes over 100,000 characters; list them with: SELECT id, length(address), length(notes) FROM customers WHERE length(address) > 1000 OR length(notes) > 100000; shorten them (or move the text elsewhere) and migrate again',
            too_long
            USING ERRCODE = 'check_violation';
    END IF;
END
$$;

ALTER TABLE customers
    ADD CONSTRAINT customers_address_length CHECK (length(address) <= 1000),
    ADD CONSTRAINT customers_notes_length CHECK (length(notes) <= 100000);

COMMENT ON CONSTRAINT customers_address_length ON customers IS 'address has at most 1,000 characters (as CustomerCreate.address).';
COMMENT ON CONSTRAINT customers_notes_length ON customers IS 'notes has at most 100,000 characters (as CustomerCreate.notes), so every row fits one CSV record import reads.';
COMMENT ON COLUMN customers.address IS 'Optional postal address, free text; at most 1,000 characters, newlines and tabs allowed.';
COMMENT ON COLUMN customers.notes IS 'Optional free-text notes by the shop''s staff; at most 100,000 characters, newlines and tabs allowed.';
