-- Queries of customer_dal.CustomerRepository.
--
-- Each query starts with "-- name: <name>" and a comment saying what it does;
-- parameters are psycopg's %(name)s placeholders, so the text runs as written.
-- Phones are compared by their digits (the generated phone_digits and
-- phone_secondary_digits columns), never as typed.
--
-- Search runs in tiers. The order of results is: customers whose phone digits
-- equal the query's (search_exact), then names starting with the query
-- (search_prefix), then the other matches (search_rest_*); within a tier by
-- name ignoring case, then id. Each tier excludes the tiers before it, so the
-- repository can concatenate them and pages never overlap or skip.
--
-- Parameters: %(exact)s is the query's digits when it looks like a phone
-- (else NULL); %(prefix)s is '<query>%' and %(pattern)s '%<query>%', with
-- LIKE's wildcards escaped; %(digit_pattern)s is '%<digits>%' or NULL.



-- name: create
-- Insert one customer and return it with the name of the user who created it.
WITH created AS (
    INSERT INTO customers (name, phone, phone_secondary, email, address, notes, created_by_id)
    VALUES (%(name)s, %(phone)s, %(phone_secondary)s, %(email)s, %(address)s, %(notes)s,
            %(created_by_id)s)
    RETURNING *
)
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM created AS c
LEFT JOIN users AS u ON u.id = c.created_by_id;


-- name: get
-- One customer by id; inactive ones only when asked for.
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM customers AS c
LEFT JOIN users AS u ON u.id = c.created_by_id
WHERE c.id = %(id)s
  AND (c.is_active OR %(include_inactive)s);


-- name: get_by_phone
-- The active customer reachable at these digits: a primary-phone match wins
-- over a secondary one (at most one customer holds a primary number), then
-- the oldest customer.
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM customers AS c
LEFT JOIN users AS u ON u.id = c.created_by_id
WHERE c.is_active
  AND (c.phone_digits = %(digits)s OR c.phone_secondary_digits = %(digits)s)
ORDER BY c.phone_digits = %(digits)s DESC, c.id
LIMIT 1;


-- name: active_phone_holder
-- Who holds this primary number now (to name them in DuplicatePhoneError).
SELECT id
FROM customers
WHERE is_active
  AND phone_digits = %(digits)s;


-- name: phone_of
-- A customer's primary phone as typed (to name it in DuplicatePhoneError).
SELECT phone
FROM customers
WHERE id = %(id)s;


-- name: search_settings
-- Plan each search for its own values (a generic plan cannot tell a rare
-- fragment from a common one). Set LOCAL inside a transaction the search
-- always rolls back, so the caller's session is never changed.
SET LOCAL plan_cache_mode = force_custom_plan;


-- name: pin_bitmap_scans
-- For search_rest_bitmap: answer from the trigram indexes, never by reading
-- the table or walking an ordered index (which, for a fragment the statistics
-- wrongly think common, reads every row).
SET LOCAL enable_seqscan = off;


-- name: pin_index_scans
-- For search_rest_bitmap: see pin_bitmap_scans.
SET LOCAL enable_indexscan = off;


-- name: search_exact
-- Tier 0: the query is a whole phone number, typed in any format.
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM customers AS c
LEFT JOIN users AS u ON u.id = c.created_by_id
WHERE (c.is_active OR %(include_inactive)s)
  AND (c.phone_digits = %(exact)s OR c.phone_secondary_digits = %(exact)s)
ORDER BY lower(c.name) COLLATE "C", c.id
LIMIT %(limit)s;


-- name: search_prefix
-- Tier 1: names starting with the query (a range of customers_name_order_idx,
-- read in order, so a common prefix costs no more than a rare one).
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM customers AS c
LEFT JOIN users AS u ON u.id = c.created_by_id
WHERE (c.is_active OR %(include_inactive)s)
  AND lower(c.name) COLLATE "C" LIKE lower(%(prefix)s)
  AND (c.phone_digits = %(exact)s OR c.phone_secondary_digits = %(exact)s) IS NOT TRUE
ORDER BY lower(c.name) COLLATE "C", c.id
LIMIT %(limit)s;


-- name: search_rest_walk
-- Tier 2 for a common fragment: walk the first %(budget)s customers in order
-- and keep the matches. Cheap when matches are dense; when it finds fewer
-- than %(limit)s the repository asks search_rest_bitmap instead.
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM (
    SELECT *
    FROM customers
    WHERE is_active OR %(include_inactive)s
    ORDER BY lower(name) COLLATE "C", id
    LIMIT %(budget)s
) AS c
LEFT JOIN users AS u ON u.id = c.created_by_id
WHERE (c.name ILIKE %(pattern)s
       OR c.email ILIKE %(pattern)s
       OR c.phone_digits LIKE %(digit_pattern)s
       OR c.phone_secondary_digits LIKE %(digit_pattern)s)
  AND lower(c.name) COLLATE "C" NOT LIKE lower(%(prefix)s)
  AND (c.phone_digits = %(exact)s OR c.phone_secondary_digits = %(exact)s) IS NOT TRUE
ORDER BY lower(c.name) COLLATE "C", c.id
LIMIT %(limit)s;


-- name: search_rest_bitmap
-- Tier 2 for a rare fragment: collect every match from the trigram indexes
-- (few, by now) and sort them.
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM customers AS c
LEFT JOIN users AS u ON u.id = c.created_by_id
WHERE (c.is_active OR %(include_inactive)s)
  AND (c.name ILIKE %(pattern)s
       OR c.email ILIKE %(pattern)s
       OR c.phone_digits LIKE %(digit_pattern)s
       OR c.phone_secondary_digits LIKE %(digit_pattern)s)
  AND lower(c.name) COLLATE "C" NOT LIKE lower(%(prefix)s)
  AND (c.phone_digits = %(exact)s OR c.phone_secondary_digits = %(exact)s) IS NOT TRUE
ORDER BY lower(c.name) COLLATE "C", c.id
LIMIT %(limit)s;


-- name: list_page
-- One page of customers by name ignoring case, then id (customers_name_order_idx).
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM customers AS c
LEFT JOIN users AS u ON u.id = c.created_by_id
WHERE c.is_active OR %(include_inactive)s
ORDER BY lower(c.name) COLLATE "C", c.id
LIMIT %(limit)s OFFSET %(offset)s;


-- name: count
-- How many customers list_page pages through.
SELECT count(*)
FROM customers
WHERE is_active OR %(include_inactive)s;


-- name: update
-- Change the fields whose set_<field> flag is true, on an active customer.
-- One fixed statement for any subset of fields: no SQL is assembled at run time.
WITH updated AS (
    UPDATE customers
    SET name            = CASE WHEN %(set_name)s THEN %(name)s ELSE name END,
        phone           = CASE WHEN %(set_phone)s THEN %(phone)s ELSE phone END,
        phone_secondary = CASE WHEN %(set_phone_secondary)s THEN %(phone_secondary)s
                               ELSE phone_secondary END,
        email           = CASE WHEN %(set_email)s THEN %(email)s ELSE email END,
        address         = CASE WHEN %(set_address)s THEN %(address)s ELSE address END,
        notes           = CASE WHEN %(set_notes)s THEN %(notes)s ELSE notes END
    WHERE id = %(id)s AND is_active
    RETURNING *
)
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM updated AS c
LEFT JOIN users AS u ON u.id = c.created_by_id;


-- name: soft_delete
-- Mark an active customer inactive; the row stays, the phone number is freed.
UPDATE customers
SET is_active = false
WHERE id = %(id)s AND is_active
RETURNING id;


-- name: restore
-- Re-activate a soft-deleted customer (fails if their number was taken since).
WITH restored AS (
    UPDATE customers
    SET is_active = true
    WHERE id = %(id)s AND NOT is_active
    RETURNING *
)
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM restored AS c
LEFT JOIN users AS u ON u.id = c.created_by_id;


-- name: count_active
-- How many customers are active.
SELECT count(*)
FROM customers
WHERE is_active;
