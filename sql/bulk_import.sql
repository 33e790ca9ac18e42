-- Queries of customer_dal.bulk: loading many customers at once.
--
-- Rows are validated in Python (the rules of CustomerCreate) and streamed with
-- COPY straight into customers. When a row is refused, the batch is rolled
-- back and checked instead: streamed into a temporary staging table (refused
-- rows too, with their reason), checked there for phones that repeat inside
-- the batch or belong to an active customer, reported in line order, and only
-- then inserted into customers with one INSERT ... SELECT.
-- Each pass is one transaction: a batch is written whole or not at all.


-- name: copy_customers
-- The first, straight pass: validated rows go directly into customers (the
-- unique index still has the last word on phones; a conflict sends the batch
-- to the checked pass below).
COPY customers (name, phone, phone_secondary, email, address, notes, is_active, created_by_id)
FROM STDIN;


-- name: create_staging
-- The batch; line is the row's line in the source file. A row that passed
-- validation has its validated values; a refused one only says why (refused)
-- and what it held (given), so its is_active is NULL and the phone checks,
-- which look at active rows, pass it by.
CREATE TEMPORARY TABLE customer_import (
    line             bigint PRIMARY KEY,
    name             text,
    phone            text,
    phone_secondary  text,
    email            text,
    address          text,
    notes            text,
    is_active        boolean,
    refused          text,
    given            json,
    phone_digits     text GENERATED ALWAYS AS (regexp_replace(phone, '[^0-9]', '', 'g')) STORED
) ON COMMIT DROP;


-- name: create_rejects
-- Every refused line: kind says why (refused by validation, or which phone
-- check), ref says who else (the earlier line, the customer holding the phone).
CREATE TEMPORARY TABLE customer_import_reject (
    line  bigint PRIMARY KEY,
    kind  text NOT NULL,
    ref   bigint
) ON COMMIT DROP;


-- name: copy_staging
-- Stream the rows into the staging table, refused ones included.
COPY customer_import (line, name, phone, phone_secondary, email, address, notes, is_active,
                      refused, given)
FROM STDIN;


-- name: find_refused_rows
-- The rows validation refused, among the rejects, so all come out in line order.
INSERT INTO customer_import_reject (line, kind, ref)
SELECT line, 'refused', NULL
FROM customer_import
WHERE refused IS NOT NULL;


-- name: find_repeated_phones
-- An active row whose primary phone (by digits) an earlier active row of the
-- batch already has: the first occurrence wins, the later ones are refused.
INSERT INTO customer_import_reject (line, kind, ref)
SELECT i.line, 'repeated_in_batch', r.first_line
FROM customer_import AS i
JOIN (
    SELECT phone_digits, min(line) AS first_line
    FROM customer_import
    WHERE is_active
    GROUP BY phone_digits
    HAVING count(*) > 1
) AS r ON r.phone_digits = i.phone_digits
WHERE i.is_active
  AND i.line <> r.first_line;


-- name: find_taken_phones
-- An active row whose primary phone an active customer already holds.
INSERT INTO customer_import_reject (line, kind, ref)
SELECT i.line, 'held_by_customer', c.id
FROM customer_import AS i
JOIN customers AS c ON c.phone_digits = i.phone_digits AND c.is_active
WHERE i.is_active
ON CONFLICT (line) DO NOTHING;


-- name: rejected_rows
-- The refused rows with their reasons, in file order.
SELECT r.line, r.kind, r.ref, i.refused, i.given, i.name, i.phone, i.phone_secondary, i.email,
       i.address, i.notes, i.is_active
FROM customer_import_reject AS r
JOIN customer_import AS i ON i.line = r.line
ORDER BY r.line;


-- name: drop_rejected
-- With --skip-invalid: keep only the rows that pass.
DELETE FROM customer_import AS i
USING customer_import_reject AS r
WHERE r.line = i.line;


-- name: insert_customers
-- Move the batch into customers, in file order.
INSERT INTO customers (name, phone, phone_secondary, email, address, notes, is_active,
                       created_by_id)
SELECT name, phone, phone_secondary, email, address, notes, is_active, %(created_by_id)s
FROM customer_import
ORDER BY line;


-- name: drop_staging
-- Done with the batch.
DROP TABLE customer_import, customer_import_reject;


-- name: export_customers
-- Customers as export writes them, oldest first, in the columns import reads;
-- with active_only, the active ones only.
SELECT name, phone, phone_secondary, email, address, notes, is_active
FROM customers
WHERE is_active OR NOT %(active_only)s
ORDER BY id;
