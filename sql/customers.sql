-- Queries of customer_dal.CustomerRepository.
--
-- Each query starts with "-- name: <name>" and a comment saying what it does;
-- parameters are %(name)s placeholders (customer_dal.queries turns them into
-- PostgreSQL's $1, $2, ... when it loads the file), and no value is ever
-- written into the text.
-- Phones are compared by their digits (the generated phone_digits and
-- phone_secondary_digits columns), never as typed.
--
-- Search runs in tiers, in one statement. The order of results is:
-- customers whose phone digits equal the query's (exact), then names starting
-- with the query (prefixed), then the other matches; within a tier by name
-- ignoring case, then id. Each tier excludes the tiers before it and takes
-- what they left of the page, so pages never overlap or skip.
--
-- Parameters, with LIKE's wildcards escaped in the query: %(query)s is the
-- query as typed; %(limit)s is offset + limit (the tiers find that many,
-- then the statement skips the first %(offset)s and reads only the rest in
-- full); %(exact)s is the query's digits when it looks like a whole phone
-- number (else NULL); %(prefix)s is '<query>%'; %(pattern)s is '%<query>%'
-- (or '<query>%' for a query without a trigram, which matches prefixes only:
-- %(prefix_only)s); %(digit_pattern)s is '%<digits>%' when the query looks
-- like a phone (else NULL), %(phone_fragment)s when it has 7 digits or more;
-- %(text_branch)s and %(digit_branch)s are %(filter)s and %(digit_pattern)s,
-- or NULL where the other finds every match (see search_params); %(walk)s is
-- how many names the rest tier walks first (0 when the walk cannot decide).
-- %(filter)s and %(digit_pattern)s matched against search_folded are a cheap
-- necessary condition that the trigram indexes can answer. The exact test on
-- name, email and the digit columns follows when %(check_fields)s: a query
-- with a letter in it can only match the name or e-mail part of
-- search_folded, where the two tests agree, so it skips the test.
--
-- Text is compared folded (migration 0008): customer_dal_fold_text() lowers
-- case in every alphabet, by the collation customer_dal_fold and never by the
-- database's LC_CTYPE, and removes accents (unaccent), so "muller" finds
-- "Müller" and "Müller" finds "Muller". The query is folded by the same
-- function as the columns name_folded and search_folded. The search
-- statements run as generic plans (see search_settings), where a function of
-- a parameter is not folded while planning but called again for every row a
-- filter tests (about 1 microsecond each: a third of a dense search's time).
-- So each folds its patterns once, in its first CTE (folded), and reads them
-- as (SELECT x FROM folded): an InitPlan, computed once per execution, which
-- can still bound an index scan. Both columns are in the C collation, and
-- the folded query is compared in it, or the indexes could not serve it.
-- list_page needs 0008's columns; search needs 0010's ordered index, and
-- falls back to search_folded or search_legacy while a migration builds the
-- indexes (see search_settings); 0009 (which contracts the old columns'
-- indexes away) changes none of them.



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


-- name: version_of
-- A customer's version (updated_at), to tell a stale write from a missing customer.
SELECT updated_at
FROM customers
WHERE id = %(id)s;


-- name: phone_of
-- A customer's primary phone as typed (to name it in DuplicatePhoneError).
SELECT phone
FROM customers
WHERE id = %(id)s;


-- name: search_settings
-- Run before each search statement, in its transaction (set_config(..., true)
-- is SET LOCAL, so nothing outlives the search), and say which search the
-- schema is ready for (search_level, below). The search statements are
-- planned once per connection as generic plans (planning them costs more
-- than running them), and their structure leaves the planner one good plan
-- per step once sorting and reading the whole table are disabled: without
-- that, a fragment the statistics wrongly think rare would be collected and
-- sorted, costing as much as it has matches. Never compile a plan (JIT) or
-- start workers for a search that reads tens of rows. search orders by
-- btree_gist's operator <-> without naming a schema: btree_gist's schema
-- (extensions, or wherever a DBA put it) goes last on the search path, where
-- it hides nothing the caller's own schemas name. One statement, so that it
-- shares a round trip with the search.
--
-- Its first column names the search statement the indexes are ready for,
-- while a migration builds them (CREATE INDEX CONCURRENTLY leaves an index
-- invalid until it is complete): search once 0010's indexes are valid, else
-- search_folded once 0008's are (it builds them after filling its columns),
-- else search_legacy (the columns of 0006). search runs only when it is the
-- one (customer_dal.search_ready_for).
SELECT s.ready_for,
       set_config('customer_dal.search_ready_for', s.ready_for, true),
       set_config('plan_cache_mode', 'force_generic_plan', true),
       set_config('enable_seqscan', 'off', true),
       set_config('enable_sort', 'off', true),
       set_config('jit', 'off', true),
       set_config('max_parallel_workers_per_gather', '0', true),
       set_config('search_path',
                  concat_ws(', ', current_setting('search_path'),
                            (SELECT quote_ident(n.nspname)
                             FROM pg_extension AS e
                             JOIN pg_namespace AS n ON n.oid = e.extnamespace
                             WHERE e.extname = 'btree_gist')),
                  true)
FROM (
    SELECT CASE
               WHEN count(*) FILTER (WHERE r.needed_by = 'search') = 2 THEN 'search'
               WHEN count(*) FILTER (WHERE r.needed_by = 'search_folded') = 2 THEN 'search_folded'
               ELSE 'search_legacy'
           END AS ready_for
    FROM (VALUES ('customers_search_ordered_idx', 'search'),
                 ('customers_email_folded_idx', 'search'),
                 ('customers_folded_order_idx', 'search_folded'),
                 ('customers_search_folded_trgm_idx', 'search_folded')) AS r (index_name, needed_by)
    JOIN pg_index AS i ON i.indexrelid = to_regclass(r.index_name)
    WHERE i.indisvalid
) AS s;


-- name: search
-- One page of search results, its tiers in one statement (each tier takes
-- what the tiers before it left of %(limit)s):
--   0. exact: the query is a whole phone number, typed in any format;
--   1. prefixed: folded names starting with the folded query, a range of
--      customers_folded_order_idx read in order (written as a range, with
--      U+10FFFF, a noncharacter, as its end, so that the generic plan can
--      use it; LIKE then tests exactly);
--   2. the other matches, in one of three ways chosen by the query's flags:
--      - rest (a query with a trigram): first a walk of the first %(walk)s
--        names in order (index-only), which answers a dense query such as an
--        e-mail domain; when the walk finds too few, the matches are read in
--        name order from customers_search_ordered_idx (migration 0010),
--        whose ordered scan skips every subtree whose trigrams cannot match,
--        so it reads about as many customers as it returns, however common
--        the query. A query that looks like a phone may run twice, as text
--        and as digits (%(text_branch)s, %(digit_branch)s; NULL, which
--        matches nothing, where one branch finds all), and is looked for as
--        typed (%(literal_branch)s) in the GIN trigram index: its trigrams
--        are digits, which every page of the ordered index holds. The
--        index's order is the search's order except among names that share
--        their first 24 bytes and are longer: those come by id, so the last
--        such group found is completed and everything sorted by the name;
--      - digits (%(phone_fragment)s: 7 or more digits and no letter): phone
--        numbers follow no name order, so the ordered index could rule out
--        few pages, but a run of 7 digits is rare among phones: collect the
--        matches from the GIN trigram index and sort them;
--      - short (%(prefix_only)s: no trigram to search by): e-mails starting
--        with the query, collected from customers_email_folded_idx and sorted.
-- Collections are MATERIALIZED CTEs, sorted by (name_folded, id) alone, then
-- the page's few customers are read in full. A tier given no rows to find
-- (LIMIT 0) runs nothing.
WITH folded AS MATERIALIZED (
    -- The query's patterns, folded once (see the file's header).
    SELECT customer_dal_fold_text(%(query)s) AS query,
           customer_dal_fold_text(%(prefix)s) AS prefix,
           customer_dal_fold_text(%(pattern)s) AS pattern,
           customer_dal_fold_text(%(text_branch)s) AS text_branch,
           customer_dal_fold_text(%(literal_branch)s) AS literal_branch,
           customer_dal_fold_text(%(filter)s) AS filter
),
exact AS MATERIALIZED (
    SELECT m.id, m.name_folded
    FROM customers AS m
    WHERE (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s)
      AND (m.is_active OR %(include_inactive)s)
),
exact_first AS MATERIALIZED (
    SELECT id, name_folded
    FROM exact
    ORDER BY name_folded, id
    LIMIT %(limit)s
),
prefixed AS MATERIALIZED (
    SELECT m.id, m.name_folded
    FROM customers AS m
    WHERE m.name_folded >= (SELECT query FROM folded) COLLATE "C"
      AND m.name_folded < ((SELECT query FROM folded) || chr(1114111)) COLLATE "C"
      AND m.name_folded LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (m.is_active OR %(include_inactive)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
    ORDER BY m.name_folded, m.id
    LIMIT %(limit)s - (SELECT count(*) FROM exact_first)
),
-- How many customers tier 2 is to find, for the way the query's flags choose.
wanted AS MATERIALIZED (
    SELECT CASE WHEN NOT (%(prefix_only)s OR %(phone_fragment)s) THEN t.n ELSE 0 END AS rest,
           CASE WHEN %(phone_fragment)s THEN t.n ELSE 0 END AS digits,
           CASE WHEN %(prefix_only)s THEN t.n ELSE 0 END AS short
    FROM (SELECT %(limit)s - (SELECT count(*) FROM exact_first)
                           - (SELECT count(*) FROM prefixed) AS n) AS t
),
-- The matches among the first %(walk)s names (0 unless the query has a
-- letter: then it is no phone, and only search_folded can match it). When
-- they are all tier 2 wants, they are its answer: no earlier name matched.
walked AS MATERIALIZED (
    SELECT w.id, w.name_folded
    FROM (
        SELECT m.id, m.name_folded, m.search_folded, m.is_active
        FROM customers AS m
        ORDER BY m.name_folded, m.id
        LIMIT %(walk)s
    ) AS w
    WHERE w.search_folded LIKE (SELECT text_branch FROM folded) COLLATE "C"
      AND (w.is_active OR %(include_inactive)s)
      AND w.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
    LIMIT (SELECT rest FROM wanted)
),
walk_answers AS MATERIALIZED (
    SELECT (SELECT count(*) FROM walked) = (SELECT rest FROM wanted) AS done
),
nearest AS MATERIALIZED (
    SELECT p.pattern, found.id, found.name_folded
    FROM (VALUES ((SELECT text_branch FROM folded) COLLATE "C"),
                 (%(digit_branch)s COLLATE "C")) AS p (pattern)
    CROSS JOIN LATERAL (
        SELECT m.id, m.name_folded
        FROM customers AS m
        WHERE (m.search_folded || '') LIKE p.pattern
          AND (m.is_active OR %(include_inactive)s)
          AND m.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
          AND (NOT %(check_fields)s
               OR customer_dal_fold_text(m.name) LIKE (SELECT pattern FROM folded)
               OR customer_dal_fold_text(m.email) LIKE (SELECT pattern FROM folded)
               OR m.phone_digits LIKE %(digit_pattern)s
               OR m.phone_secondary_digits LIKE %(digit_pattern)s)
          AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
        ORDER BY customer_dal_name_key(m.name_folded, 1) <-> 0,
                 customer_dal_name_key(m.name_folded, 2) <-> 0,
                 customer_dal_name_key(m.name_folded, 3) <-> 0,
                 customer_dal_name_key(m.name_folded, 4) <-> 0,
                 (m.id + 0) <-> 0
        LIMIT (SELECT rest FROM wanted)
    ) AS found
    WHERE NOT (SELECT done FROM walk_answers)
),
literal AS MATERIALIZED (
    SELECT m.id, m.name_folded
    FROM customers AS m
    WHERE m.search_folded LIKE (SELECT literal_branch FROM folded) COLLATE "C"
      AND (m.is_active OR %(include_inactive)s)
      AND m.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (NOT %(check_fields)s
           OR customer_dal_fold_text(m.name) LIKE (SELECT pattern FROM folded)
           OR customer_dal_fold_text(m.email) LIKE (SELECT pattern FROM folded))
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
),
-- The greatest name each pattern found, when it is 24 bytes or longer and
-- more matches may follow: names sharing its first 24 bytes came by id.
last_group AS (
    SELECT pattern, max(name_folded) AS name_folded
    FROM nearest
    GROUP BY pattern
    HAVING count(*) = (SELECT rest FROM wanted) AND octet_length(max(name_folded)) >= 24
),
completed AS (
    SELECT m.id, m.name_folded
    FROM last_group AS g
    JOIN customers AS m
      ON customer_dal_name_key(m.name_folded, 1) = customer_dal_name_key(g.name_folded, 1)
     AND customer_dal_name_key(m.name_folded, 2) = customer_dal_name_key(g.name_folded, 2)
     AND customer_dal_name_key(m.name_folded, 3) = customer_dal_name_key(g.name_folded, 3)
     AND customer_dal_name_key(m.name_folded, 4) = customer_dal_name_key(g.name_folded, 4)
    WHERE (m.search_folded || '') LIKE g.pattern
      AND (m.is_active OR %(include_inactive)s)
      AND m.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (NOT %(check_fields)s
           OR customer_dal_fold_text(m.name) LIKE (SELECT pattern FROM folded)
           OR customer_dal_fold_text(m.email) LIKE (SELECT pattern FROM folded)
           OR m.phone_digits LIKE %(digit_pattern)s
           OR m.phone_secondary_digits LIKE %(digit_pattern)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
),
rest AS (
    SELECT id, name_folded FROM walked WHERE (SELECT done FROM walk_answers)
    UNION ALL
    (SELECT id, name_folded FROM nearest
     UNION
     SELECT id, name_folded FROM completed
     UNION
     SELECT id, name_folded FROM literal
     ORDER BY name_folded, id
     LIMIT (SELECT rest FROM wanted))
),
digit_matches AS MATERIALIZED (
    SELECT m.id, m.name_folded
    FROM customers AS m
    WHERE (m.search_folded LIKE (SELECT filter FROM folded) COLLATE "C"
           OR m.search_folded LIKE %(digit_pattern)s)
      AND (m.is_active OR %(include_inactive)s)
      AND m.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (NOT %(check_fields)s
           OR customer_dal_fold_text(m.name) LIKE (SELECT pattern FROM folded)
           OR customer_dal_fold_text(m.email) LIKE (SELECT pattern FROM folded)
           OR m.phone_digits LIKE %(digit_pattern)s
           OR m.phone_secondary_digits LIKE %(digit_pattern)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
),
email_prefixed AS MATERIALIZED (
    SELECT m.id, m.name_folded
    FROM customers AS m
    WHERE customer_dal_fold_text(m.email) COLLATE "C"
              >= (SELECT query FROM folded) COLLATE "C"
      AND customer_dal_fold_text(m.email) COLLATE "C"
              < ((SELECT query FROM folded) || chr(1114111)) COLLATE "C"
      AND customer_dal_fold_text(m.email) COLLATE "C" LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (m.is_active OR %(include_inactive)s)
      AND m.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
),
found AS (
    SELECT 0 AS tier, id, name_folded FROM exact_first
    UNION ALL
    SELECT 1, id, name_folded FROM prefixed
    UNION ALL
    SELECT 2, id, name_folded FROM rest
    UNION ALL
    (SELECT 2, id, name_folded FROM digit_matches
     ORDER BY name_folded, id
     LIMIT (SELECT digits FROM wanted))
    UNION ALL
    (SELECT 2, id, name_folded FROM email_prefixed
     ORDER BY name_folded, id
     LIMIT (SELECT short FROM wanted))
)
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
-- Only the customers past the offset are read in full.
FROM (SELECT tier, id, name_folded FROM found
      ORDER BY tier, name_folded, id
      OFFSET %(offset)s) AS f
JOIN customers AS c ON c.id = f.id
LEFT JOIN users AS u ON u.id = c.created_by_id
-- Nothing runs while 0010's indexes are being built: without them, the
-- ordered scan would read and sort the whole table.
WHERE current_setting('customer_dal.search_ready_for') = 'search'
ORDER BY f.tier, f.name_folded, f.id;


-- name: search_folded
-- search, for a schema whose 0010 indexes are not ready yet (a migration is
-- building them): the same tiers, from 0008's indexes. The rest tier walks
-- the first 2,000 names in order, which answers dense fragments; when that
-- finds too few, it collects the matches from the GIN trigram index and
-- sorts them (a few milliseconds for a few thousand matches at 1,000,000
-- customers; 150 ms for 44,000), or, past 50,000 matches, reads on in name
-- order. Slower than search, but only while a migration runs. A query
-- without a trigram matches name prefixes only (e-mail prefixes need 0010's
-- index).
WITH folded AS MATERIALIZED (
    -- The query's patterns, folded once (see the file's header).
    SELECT customer_dal_fold_text(%(query)s) AS query,
           customer_dal_fold_text(%(prefix)s) AS prefix,
           customer_dal_fold_text(%(pattern)s) AS pattern,
           customer_dal_fold_text(%(text_branch)s) AS text_branch,
           customer_dal_fold_text(%(filter)s) AS filter
),
exact AS MATERIALIZED (
    SELECT m.id, m.name_folded
    FROM customers AS m
    WHERE (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s)
      AND (m.is_active OR %(include_inactive)s)
),
exact_first AS MATERIALIZED (
    SELECT id, name_folded FROM exact ORDER BY name_folded, id LIMIT %(limit)s
),
prefixed AS MATERIALIZED (
    SELECT m.id, m.name_folded
    FROM customers AS m
    WHERE m.name_folded >= (SELECT query FROM folded) COLLATE "C"
      AND m.name_folded < ((SELECT query FROM folded) || chr(1114111)) COLLATE "C"
      AND m.name_folded LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (m.is_active OR %(include_inactive)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
    ORDER BY m.name_folded, m.id
    LIMIT %(limit)s - (SELECT count(*) FROM exact_first)
),
wanted AS MATERIALIZED (
    SELECT CASE WHEN %(prefix_only)s THEN 0
                ELSE %(limit)s - (SELECT count(*) FROM exact_first)
                               - (SELECT count(*) FROM prefixed)
           END AS rest
),
walked AS MATERIALIZED (
    SELECT w.id, w.name_folded
    FROM (
        SELECT m.id, m.name_folded, m.search_folded, m.is_active
        FROM customers AS m
        ORDER BY m.name_folded, m.id
        LIMIT CASE WHEN %(walk)s > 0 THEN 2000 ELSE 0 END
    ) AS w
    WHERE w.search_folded LIKE (SELECT text_branch FROM folded) COLLATE "C"
      AND (w.is_active OR %(include_inactive)s)
      AND w.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
    LIMIT (SELECT rest FROM wanted)
),
walk_answers AS MATERIALIZED (
    SELECT (SELECT count(*) FROM walked) = (SELECT rest FROM wanted) AS done
),
matches AS MATERIALIZED (
    SELECT m.id, m.name_folded
    FROM customers AS m
    WHERE (m.search_folded LIKE (SELECT filter FROM folded) COLLATE "C"
           OR m.search_folded LIKE %(digit_pattern)s)
      AND (m.is_active OR %(include_inactive)s)
      AND m.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (NOT %(check_fields)s
           OR customer_dal_fold_text(m.name) LIKE (SELECT pattern FROM folded)
           OR customer_dal_fold_text(m.email) LIKE (SELECT pattern FROM folded)
           OR m.phone_digits LIKE %(digit_pattern)s
           OR m.phone_secondary_digits LIKE %(digit_pattern)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
    LIMIT 50000
),
-- 50,000 matches or more: too many to sort. Read names on in order (from the
-- index alone, then the table for those that pass), to the last one wanted:
-- so many matches are seldom all late in name order.
crowded AS MATERIALIZED (
    SELECT w.id, w.name_folded
    FROM customers AS w
    JOIN customers AS m ON m.id = w.id
    WHERE (w.search_folded LIKE (SELECT filter FROM folded) COLLATE "C"
           OR w.search_folded LIKE %(digit_pattern)s)
      AND (w.is_active OR %(include_inactive)s)
      AND w.name_folded NOT LIKE (SELECT prefix FROM folded) COLLATE "C"
      AND (NOT %(check_fields)s
           OR customer_dal_fold_text(m.name) LIKE (SELECT pattern FROM folded)
           OR customer_dal_fold_text(m.email) LIKE (SELECT pattern FROM folded)
           OR m.phone_digits LIKE %(digit_pattern)s
           OR m.phone_secondary_digits LIKE %(digit_pattern)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
    ORDER BY w.name_folded, w.id
    LIMIT (SELECT rest FROM wanted)
),
found AS (
    SELECT 0 AS tier, id, name_folded FROM exact_first
    UNION ALL
    SELECT 1, id, name_folded FROM prefixed
    UNION ALL
    SELECT 2, id, name_folded FROM walked WHERE (SELECT done FROM walk_answers)
    UNION ALL
    (SELECT 2, id, name_folded FROM matches
     WHERE NOT (SELECT done FROM walk_answers) AND (SELECT count(*) FROM matches) < 50000
     ORDER BY name_folded, id
     LIMIT (SELECT rest FROM wanted))
    UNION ALL
    SELECT 2, id, name_folded FROM crowded
    WHERE NOT (SELECT done FROM walk_answers) AND (SELECT count(*) FROM matches) = 50000
)
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM (SELECT tier, id, name_folded FROM found
      ORDER BY tier, name_folded, id
      OFFSET %(offset)s) AS f
JOIN customers AS c ON c.id = f.id
LEFT JOIN users AS u ON u.id = c.created_by_id
ORDER BY f.tier, f.name_folded, f.id;


-- name: search_legacy
-- search_folded, for a schema whose 0008 indexes are not ready yet (a
-- migration is filling its columns): the columns of 0006 (name_key,
-- search_text) and their indexes, which fold case but not accents. 0009
-- drops those indexes, but only once 0008's are ready.
WITH exact AS MATERIALIZED (
    SELECT m.id, m.name_key
    FROM customers AS m
    WHERE (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s)
      AND (m.is_active OR %(include_inactive)s)
),
exact_first AS MATERIALIZED (
    SELECT id, name_key FROM exact ORDER BY name_key, id LIMIT %(limit)s
),
prefixed AS MATERIALIZED (
    SELECT m.id, m.name_key
    FROM customers AS m
    WHERE m.name_key >= lower(%(query)s COLLATE customer_dal_fold) COLLATE "C"
      AND m.name_key < (lower(%(query)s COLLATE customer_dal_fold) || chr(1114111)) COLLATE "C"
      AND m.name_key LIKE lower(%(prefix)s COLLATE customer_dal_fold) COLLATE "C"
      AND (m.is_active OR %(include_inactive)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
    ORDER BY m.name_key, m.id
    LIMIT %(limit)s - (SELECT count(*) FROM exact_first)
),
wanted AS MATERIALIZED (
    SELECT CASE WHEN %(prefix_only)s THEN 0
                ELSE %(limit)s - (SELECT count(*) FROM exact_first)
                               - (SELECT count(*) FROM prefixed)
           END AS rest
),
walked AS MATERIALIZED (
    SELECT w.id, w.name_key
    FROM (
        SELECT m.id, m.name_key, m.search_text, m.is_active
        FROM customers AS m
        ORDER BY m.name_key, m.id
        LIMIT CASE WHEN %(walk)s > 0 THEN 2000 ELSE 0 END
    ) AS w
    WHERE w.search_text LIKE lower(%(text_branch)s COLLATE customer_dal_fold) COLLATE "default"
      AND (w.is_active OR %(include_inactive)s)
      AND w.name_key NOT LIKE lower(%(prefix)s COLLATE customer_dal_fold) COLLATE "C"
    LIMIT (SELECT rest FROM wanted)
),
walk_answers AS MATERIALIZED (
    SELECT (SELECT count(*) FROM walked) = (SELECT rest FROM wanted) AS done
),
matches AS MATERIALIZED (
    SELECT m.id, m.name_key
    FROM customers AS m
    WHERE (m.search_text LIKE lower(%(filter)s COLLATE customer_dal_fold) COLLATE "default"
           OR m.search_text LIKE %(digit_pattern)s)
      AND (m.is_active OR %(include_inactive)s)
      AND m.name_key NOT LIKE lower(%(prefix)s COLLATE customer_dal_fold) COLLATE "C"
      AND (NOT %(check_fields)s
           OR m.name COLLATE customer_dal_fold ILIKE %(pattern)s
           OR m.email COLLATE customer_dal_fold ILIKE %(pattern)s
           OR m.phone_digits LIKE %(digit_pattern)s
           OR m.phone_secondary_digits LIKE %(digit_pattern)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
    LIMIT 50000
),
-- 50,000 matches or more: too many to sort. Read names on in order (from the
-- index alone, then the table for those that pass), to the last one wanted:
-- so many matches are seldom all late in name order.
crowded AS MATERIALIZED (
    SELECT w.id, w.name_key
    FROM customers AS w
    JOIN customers AS m ON m.id = w.id
    WHERE (w.search_text LIKE lower(%(filter)s COLLATE customer_dal_fold) COLLATE "default"
           OR w.search_text LIKE %(digit_pattern)s)
      AND (w.is_active OR %(include_inactive)s)
      AND w.name_key NOT LIKE lower(%(prefix)s COLLATE customer_dal_fold) COLLATE "C"
      AND (NOT %(check_fields)s
           OR m.name COLLATE customer_dal_fold ILIKE %(pattern)s
           OR m.email COLLATE customer_dal_fold ILIKE %(pattern)s
           OR m.phone_digits LIKE %(digit_pattern)s
           OR m.phone_secondary_digits LIKE %(digit_pattern)s)
      AND (m.phone_digits = %(exact)s OR m.phone_secondary_digits = %(exact)s) IS NOT TRUE
    ORDER BY w.name_key, w.id
    LIMIT (SELECT rest FROM wanted)
),
found AS (
    SELECT 0 AS tier, id, name_key FROM exact_first
    UNION ALL
    SELECT 1, id, name_key FROM prefixed
    UNION ALL
    SELECT 2, id, name_key FROM walked WHERE (SELECT done FROM walk_answers)
    UNION ALL
    (SELECT 2, id, name_key FROM matches
     WHERE NOT (SELECT done FROM walk_answers) AND (SELECT count(*) FROM matches) < 50000
     ORDER BY name_key, id
     LIMIT (SELECT rest FROM wanted))
    UNION ALL
    SELECT 2, id, name_key FROM crowded
    WHERE NOT (SELECT done FROM walk_answers) AND (SELECT count(*) FROM matches) = 50000
)
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM (SELECT tier, id, name_key FROM found
      ORDER BY tier, name_key, id
      OFFSET %(offset)s) AS f
JOIN customers AS c ON c.id = f.id
LEFT JOIN users AS u ON u.id = c.created_by_id
ORDER BY f.tier, f.name_key, f.id;


-- name: list_page
-- One page of customers by name ignoring case and accents, then id
-- (customers_folded_order_idx).
SELECT c.id, c.name, c.phone, c.phone_secondary, c.email, c.address, c.notes, c.is_active,
       c.created_by_id, u.full_name AS created_by_name, c.created_at, c.updated_at
FROM customers AS c
LEFT JOIN users AS u ON u.id = c.created_by_id
WHERE c.is_active OR %(include_inactive)s
ORDER BY c.name_folded, c.id
LIMIT %(limit)s OFFSET %(offset)s;


-- name: count
-- How many customers list_page pages through.
SELECT count(*)
FROM customers
WHERE is_active OR %(include_inactive)s;


-- name: update
-- Change the fields whose set_<field> flag is true, on an active customer
-- whose updated_at is %(expected_updated_at)s (when given: optimistic concurrency).
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
      AND (%(expected_updated_at)s::timestamptz IS NULL
           OR updated_at = %(expected_updated_at)s::timestamptz)
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
  AND (%(expected_updated_at)s::timestamptz IS NULL
       OR updated_at = %(expected_updated_at)s::timestamptz)
RETURNING id;


-- name: restore
-- Re-activate a soft-deleted customer (fails if their number was taken since).
WITH restored AS (
    UPDATE customers
    SET is_active = true
    WHERE id = %(id)s AND NOT is_active
      AND (%(expected_updated_at)s::timestamptz IS NULL
           OR updated_at = %(expected_updated_at)s::timestamptz)
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
