-- Queries of customer_dal.bulk: loading many customers at once.
--
-- Rows are validated in Python (the rules of CustomerCreate) and streamed with
-- COPY straight into customers. When a row is refused, the batch is rolled
-- back and checked instead: streamed into a temporary staging table, checked
-- there for phones that repeat inside the batch or belong to an active
-- customer, and only then inserted into customers with one INSERT ... SELECT.
-- Each pass is one transaction: a batch is written whole or not at all.


-- name: copy_customers
-- The first, straight pass: validated rows go directly into customers (the
-- unique index still has the last word on phones; a conflict sends the batch
-- to the checked pass below).
COPY customers (name, phone, phone_secondary, email, address, notes, is_active, created_by_id)
FROM STDIN;


-- name: create_staging
-- The batch as validated rows; line is the row's line in the source file.
CREATE TEMPORARY TABLE customer_import (
    line             bigint PRIMARY KEY,
    name             text NOT NULL,
    phone            text NOT NULL,
    phone_secondary  text,
    email            text,
    address          text,
    notes            text,
    is_active        boolean NOT NULL,
    phone_digits     text GENERATED ALWAYS AS (regexp_replace(phone, '[^0-9]', '', 'g')) STORED
) ON COMMIT DROP;


-- name: create_rejects
-- Lines the database-side checks refuse: kind says why, ref says who else.
CREATE TEMPORARY TABLE customer_import_reject (
    line  bigint PRIMARY KEY,
    kind  text NOT NULL,
    ref   bigint NOT NULL
) ON COMMIT DROP;


-- name: copy_staging
-- Stream validated rows into the staging table.
COPY customer_import (line, name, phone, phone_secondary, email, address, notes, is_active)
FROM STDIN;


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
SELECT r.line, r.kind, r.ref, i.name, i.phone, i.phone_secondary, i.email, i.address,
       i.notes, i.is_active
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


-- name: copy_export
-- Every customer as CSV, oldest first (the columns import reads).
COPY (
    SELECT name, phone, phone_secondary, email, address, notes, is_active
    FROM customers
    ORDER BY id
) TO STDOUT WITH (FORMAT csv, HEADER true);


-- name: copy_export_active
-- Active customers only, as CSV, oldest first.
COPY (
    SELECT name, phone, phone_secondary, email, address, notes, is_active
    FROM customers
    WHERE is_active
    ORDER BY id
) TO STDOUT WITH (FORMAT csv, HEADER true);
