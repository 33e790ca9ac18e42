-- Undo 0004_text_hygiene, statement by statement in reverse order.
-- The constraints' comments go with them.

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

ALTER TABLE users
    DROP CONSTRAINT users_email_clean,
    DROP CONSTRAINT users_full_name_clean;

ALTER TABLE customers
    DROP CONSTRAINT customers_notes_clean,
    DROP CONSTRAINT customers_address_clean,
    DROP CONSTRAINT customers_email_clean,
    DROP CONSTRAINT customers_phone_secondary_clean,
    DROP CONSTRAINT customers_phone_clean,
    DROP CONSTRAINT customers_name_clean;

DROP FUNCTION text_is_clean_block(text);

DROP FUNCTION text_is_clean_line(text);
