-- Queries of customer_dal.UserRepository (see customers.sql for the conventions).


-- name: create
-- Insert one user.
INSERT INTO users (full_name, email)
VALUES (%(full_name)s, %(email)s)
RETURNING id, full_name, email, created_at;


-- name: get
-- One user by id.
SELECT id, full_name, email, created_at
FROM users
WHERE id = %(id)s;
