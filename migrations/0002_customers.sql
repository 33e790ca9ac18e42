-- Customers of the shop.
--
-- The database, not the application, enforces the rules, so a row typed by
-- hand in psql obeys them too: a name that is not blank, phones with at least
-- 7 digits, an e-mail of the right shape, and no two ACTIVE customers sharing
-- a primary phone however it is formatted ("(555) 123-4567", "555.123.4567"
-- and "5551234567" are one number: phones are compared by their digits, kept
-- in generated columns). A soft-deleted customer (is_active = false) frees
-- the number for reuse.
-- depends: 0001_users

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

-- Trigram indexes serve the substring search (ILIKE '%x%' cannot use a B-tree).
-- Create the extension only when it is absent, and mark it, so rolling back
-- drops it only if this migration created it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE EXTENSION pg_trgm;
        COMMENT ON EXTENSION pg_trgm IS 'trigram matching for customer search; created by customer_dal migration 0002_customers, dropped by its rollback';
    END IF;
END
$$;

CREATE TABLE customers (
    id                      bigint GENERATED ALWAYS AS IDENTITY,
    name                    varchar(100) NOT NULL,
    phone                   varchar(20) NOT NULL,
    phone_secondary         varchar(20),
    email                   varchar(100),
    address                 text,
    notes                   text,
    is_active               boolean NOT NULL DEFAULT true,
    created_by_id           bigint,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    phone_digits            text NOT NULL
        GENERATED ALWAYS AS (regexp_replace(phone, '[^0-9]', '', 'g')) STORED,
    phone_secondary_digits  text
        GENERATED ALWAYS AS (regexp_replace(phone_secondary, '[^0-9]', '', 'g')) STORED,
    -- The order customers are listed and searched in: the name ignoring case,
    -- compared by code point (COLLATE "C"), so it is the same on every server
    -- whatever its locale, and LIKE 'prefix%' can read it as a range.
    name_key                text COLLATE "C" NOT NULL
        GENERATED ALWAYS AS (lower(name)) STORED,
    -- Everything search matches, in one lower-case string: name, e-mail and
    -- both phones' digits, separated by U+001F (which search queries may not
    -- contain, so no match spans two fields).
    search_text             text NOT NULL
        GENERATED ALWAYS AS (
            lower(name) || E'\x1f' || coalesce(lower(email), '') || E'\x1f'
            || regexp_replace(phone, '[^0-9]', '', 'g') || E'\x1f'
            || coalesce(regexp_replace(phone_secondary, '[^0-9]', '', 'g'), '')
        ) STORED,
    CONSTRAINT customers_pkey PRIMARY KEY (id),
    -- The customer outlives the clerk who registered them.
    CONSTRAINT customers_created_by_id_fkey FOREIGN KEY (created_by_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT customers_name_not_blank CHECK (name ~ '\S'),
    CONSTRAINT customers_phone_min_digits CHECK (length(phone_digits) >= 7),
    CONSTRAINT customers_phone_secondary_min_digits
        CHECK (phone_secondary IS NULL OR length(phone_secondary_digits) >= 7),
    -- The shape only (one @, a dot in the domain, no spaces); the application
    -- validates fully with email-validator.
    CONSTRAINT customers_email_shape
        CHECK (email IS NULL OR email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$')
);

-- The rule "no two active customers share a primary phone". A unique index,
-- not a check in the application, so it holds under concurrent writes.
CREATE UNIQUE INDEX customers_active_phone_key
    ON customers (phone_digits) WHERE is_active;

-- Exact look-ups by digits (get_by_phone, and the "exact phone match comes
-- first" rule of search), for active and soft-deleted customers alike.
CREATE INDEX customers_phone_digits_idx ON customers (phone_digits);
CREATE INDEX customers_phone_secondary_digits_idx ON customers (phone_secondary_digits);

-- Substring search (ILIKE '%x%' cannot use a B-tree): one trigram index over
-- everything search matches.
CREATE INDEX customers_search_text_trgm_idx ON customers USING gin (search_text gin_trgm_ops);

-- Listing and searching in name order. It carries is_active and search_text,
-- so a search can read customers in order and test them from the index alone,
-- without visiting the table for the rows that do not match.
CREATE INDEX customers_search_order_idx
    ON customers (name_key, id) INCLUDE (is_active, search_text);

-- Deleting a user sets created_by_id to NULL: without this index that is a full scan.
CREATE INDEX customers_created_by_id_idx ON customers (created_by_id);

-- updated_at moves on every UPDATE, including one typed in psql. (A WHEN
-- (OLD IS DISTINCT FROM NEW) filter is not allowed: NEW's generated columns
-- are not computed yet in a BEFORE trigger.)
CREATE FUNCTION customers_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER customers_touch_updated_at
    BEFORE UPDATE ON customers
    FOR EACH ROW
    EXECUTE FUNCTION customers_touch_updated_at();

COMMENT ON FUNCTION customers_touch_updated_at() IS 'Sets customers.updated_at to now() on every UPDATE of a customer.';
COMMENT ON TABLE customers IS 'The shop''s customers. Soft-deleted rows keep is_active = false; the balance is not stored (a ledger computes it).';
COMMENT ON COLUMN customers.id IS 'Surrogate key, assigned by the database.';
COMMENT ON COLUMN customers.name IS 'Full name as the customer gives it; 1-100 characters, not blank.';
COMMENT ON COLUMN customers.phone IS 'Primary phone as typed; at least 7 digits; unique among active customers by its digits.';
COMMENT ON COLUMN customers.phone_secondary IS 'Optional second phone as typed; at least 7 digits; may be shared (a family landline).';
COMMENT ON COLUMN customers.email IS 'Optional e-mail address, normalised by the application.';
COMMENT ON COLUMN customers.address IS 'Optional postal address, free text.';
COMMENT ON COLUMN customers.notes IS 'Optional free-text notes by the shop''s staff.';
COMMENT ON COLUMN customers.is_active IS 'false once the customer is soft-deleted; the row and its history stay.';
COMMENT ON COLUMN customers.created_by_id IS 'The user who registered the customer; NULL when unknown or when that user was deleted.';
COMMENT ON COLUMN customers.created_at IS 'When the customer was registered (database clock).';
COMMENT ON COLUMN customers.updated_at IS 'When the row last changed; kept by trigger customers_touch_updated_at.';
COMMENT ON COLUMN customers.phone_digits IS 'Digits of phone (generated): what uniqueness and phone search compare.';
COMMENT ON COLUMN customers.phone_secondary_digits IS 'Digits of phone_secondary (generated), for lookup and search.';
COMMENT ON COLUMN customers.name_key IS 'lower(name) in the C collation (generated): the order of lists and search results.';
COMMENT ON COLUMN customers.search_text IS 'Lower-case name, e-mail and phone digits, separated by U+001F (generated): what search matches.';
