-- Users: the minimal table the auth system will own. Customers point here
-- through created_by_id, so this table exists before customers does.

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    full_name   text NOT NULL,
    email       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_full_name_not_blank CHECK (full_name ~ '\S'),
    CONSTRAINT users_full_name_length CHECK (length(full_name) <= 200)
);

-- Two spellings of one address (Ann@Shop.com, ann@shop.com) are one user.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

COMMENT ON TABLE users IS 'People who use the shop''s system; owned by the auth system, referenced by customers.created_by_id.';
COMMENT ON COLUMN users.id IS 'Surrogate key, assigned by the database.';
COMMENT ON COLUMN users.full_name IS 'Name shown next to the records this user created; 1-200 characters, never blank.';
COMMENT ON COLUMN users.email IS 'Optional login e-mail; unique ignoring case (index users_email_lower_key).';
COMMENT ON COLUMN users.created_at IS 'When the user was created (database clock).';
