-- Queries of customer_dal.bulk: loading many customers at once.
--
-- Rows are validated in Python (the rules of CustomerCreate) and streamed with
-- COPY straight into customers. When a row is refused, the batch is rolled
-- back and checked instead, with no temporary table (so it works where TEMP
-- is revoked from PUBLIC): Python reads the rows again in chunks, remembers
-- the digits of each active row's phone to find repeats inside the batch,
-- asks taken_phones which of a chunk's phones active customers hold, and
-- COPYs the chunk's good rows into customers.
-- Each pass is one transaction: a batch is written whole or not at all.


-- name: copy_customers
-- The first, straight pass: validated rows go directly into customers (the
-- unique index still has the last word on phones; a conflict sends the batch
-- to the checked pass below).
COPY customers (name, phone, phone_secondary, email, address, notes, is_active, created_by_id)
FROM STDIN;


-- name: taken_phones
-- Of one checked batch's primary phones (as digits), those an active customer
-- already holds, and who holds each (the unique index allows one at most).
SELECT phone_digits, id
FROM customers
WHERE is_active
  AND phone_digits = ANY(%(digits)s);


-- name: export_customers
-- Customers as export writes them, oldest first, in the columns import reads;
-- with active_only, the active ones only.
SELECT name, phone, phone_secondary, email, address, notes, is_active
FROM customers
WHERE is_active OR NOT %(active_only)s
ORDER BY id;
