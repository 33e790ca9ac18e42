-- Text hygiene, enforced by the database for rows written by hand too:
-- * no control characters (Unicode category Cc: U+0001-U+001F and
--   U+007F-U+009F; text cannot hold U+0000) in one-line fields: an ESC in a
--   name reached operators' terminals, a newline broke the CLI's table, and
--   U+001F (search_text's field separator) made false matches;
-- * address and notes may hold newlines and tabs, no other control character;
-- * all text in Unicode normal form C, so "Mu" + U+0308 is stored, compared
--   and searched as the "Müller" a keyboard types.
-- Rows that break the rules make this migration fail, saying how many and how
-- to list them: data is never changed behind anyone's back.
-- depends: 0003_version_stamp

-- The checks are validated as they are added, under ALTER TABLE's lock:
-- about a second per million customers, after the DO block below has read
-- them once to say which rows would fail.
-- squawk-ignore-file constraint-missing-not-valid

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

CREATE FUNCTION text_is_clean_line(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN value !~ '[\x01-\x1f\x7f-\x9f]' AND value IS NFC NORMALIZED;

CREATE FUNCTION text_is_clean_block(value text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN value !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]' AND value IS NFC NORMALIZED;

COMMENT ON FUNCTION text_is_clean_line(text) IS 'True when the text has no control character (Unicode category Cc) and is in normal form C: the rule of one-line fields (names, phones, e-mails).';
COMMENT ON FUNCTION text_is_clean_block(text) IS 'True when the text has no control character but newline and tab, and is in normal form C: the rule of multi-line fields (address, notes).';

DO $$
DECLARE
    broken_customers bigint;
    broken_users bigint;
BEGIN
    SELECT count(*) INTO broken_customers FROM customers
    WHERE NOT (text_is_clean_line(name) AND text_is_clean_line(phone)
               AND coalesce(text_is_clean_line(phone_secondary), true)
               AND coalesce(text_is_clean_line(email), true)
               AND coalesce(text_is_clean_block(address), true)
               AND coalesce(text_is_clean_block(notes), true));
    SELECT count(*) INTO broken_users FROM users
    WHERE NOT (text_is_clean_line(full_name) AND coalesce(text_is_clean_line(email), true));
    IF broken_customers + broken_users > 0 THEN
        RAISE EXCEPTION '% customer(s) and % user(s) hold control characters or text not in Unicode normal form C; list them with: SELECT id FROM customers WHERE concat_ws('' '', name, phone, phone_secondary, email) ~ ''[\x01-\x1f\x7f-\x9f]'' OR concat_ws('' '', address, notes) ~ ''[\x01-\x08\x0b-\x1f\x7f-\x9f]'' OR NOT concat_ws('' '', name, phone, phone_secondary, email, address, notes) IS NFC NORMALIZED (and the same on users.full_name, users.email); fix them (e.g. SET name = normalize(name, NFC)) and migrate again',
            broken_customers, broken_users
            USING ERRCODE = 'check_violation';
    END IF;
END
$$;

ALTER TABLE customers
    ADD CONSTRAINT customers_name_clean CHECK (text_is_clean_line(name)),
    ADD CONSTRAINT customers_phone_clean CHECK (text_is_clean_line(phone)),
    ADD CONSTRAINT customers_phone_secondary_clean CHECK (text_is_clean_line(phone_secondary)),
    ADD CONSTRAINT customers_email_clean CHECK (text_is_clean_line(email)),
    ADD CONSTRAINT customers_address_clean CHECK (text_is_clean_block(address)),
    ADD CONSTRAINT customers_notes_clean CHECK (text_is_clean_block(notes));

ALTER TABLE users
    ADD CONSTRAINT users_full_name_clean CHECK (text_is_clean_line(full_name)),
    ADD CONSTRAINT users_email_clean CHECK (text_is_clean_line(email));

COMMENT ON CONSTRAINT customers_name_clean ON customers IS 'name: no control characters, Unicode normal form C (text_is_clean_line).';
COMMENT ON CONSTRAINT customers_phone_clean ON customers IS 'phone: no control characters, Unicode normal form C (text_is_clean_line).';
COMMENT ON CONSTRAINT customers_phone_secondary_clean ON customers IS 'phone_secondary: no control characters, Unicode normal form C (text_is_clean_line).';
COMMENT ON CONSTRAINT customers_email_clean ON customers IS 'email: no control characters, Unicode normal form C (text_is_clean_line).';
COMMENT ON CONSTRAINT customers_address_clean ON customers IS 'address: no control characters but newline and tab, Unicode normal form C (text_is_clean_block).';
COMMENT ON CONSTRAINT customers_notes_clean ON customers IS 'notes: no control characters but newline and tab, Unicode normal form C (text_is_clean_block).';
COMMENT ON CONSTRAINT users_full_name_clean ON users IS 'full_name: no control characters, Unicode normal form C (text_is_clean_line).';
COMMENT ON CONSTRAINT users_email_clean ON users IS 'email: no control characters, Unicode normal form C (text_is_clean_line).';
