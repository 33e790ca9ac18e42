-- Undo 0001_users, statement by statement in reverse order.
-- The COMMENTs go with the table.

-- Fail fast instead of queueing behind a long transaction (and every query
-- behind us); yoyo runs the whole file in one transaction, so LOCAL suffices.
SET LOCAL lock_timeout = '10s';

SET LOCAL statement_timeout = '15min';

DROP INDEX users_email_lower_key;

DROP TABLE users;
