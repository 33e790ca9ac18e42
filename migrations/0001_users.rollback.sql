-- Undo 0001_users, statement by statement in reverse order.
-- The COMMENTs go with the table.

DROP INDEX users_email_lower_key;

DROP TABLE users;
