-- Search reads its matches in name order from one index, however common the
-- query and wherever its matches sit in that order. Until now the last search
-- tier either walked customers in name order (fast only when matches come
-- early) or collected every trigram match and sorted them (slow when there
-- are tens of thousands, such as "atric" in every Patricia). This adds a GiST
-- index that keeps customers in folded-name order and, in each subtree, a
-- signature of the trigrams below it: an ordered scan (GiST's nearest-first
-- search, ORDER BY ... <-> 0) returns matches in name order and skips every
-- subtree that cannot hold one, so it stops after the first few matches
-- instead of reading them all.
--
-- GiST orders by distances in double precision, exact up to 2^53, so the name
-- is cut into 6-byte pieces (customer_dal_name_key), and id breaks ties: the
-- index orders by the first 24 bytes of the folded name, then id; the query
-- puts names longer than that into full order itself. btree_gist provides
-- GiST support for bigint and its distance operator <->.
-- Each statement commits on its own and is safe to run again; the index is
-- built CONCURRENTLY, so readers and writers go on meanwhile.
-- transactional: false
-- depends: 0008_accent_folding

-- Each statement is a transaction of its own, so these are session settings
-- (customer_dal resets them when the migration ends). A statement that waits
-- longer than this for a lock gives up, and customer_dal tries it again a few
-- times, rather than queue every query on customers behind it for long.
SET lock_timeout = '500ms';

SET statement_timeout = '1h';

-- btree_gist is a trusted extension: a database owner that is no superuser
-- may create it. Beside pg_trgm and unaccent in schema extensions when that
-- schema exists and we may create in it, else in the current schema; marked,
-- so the rollback drops it only if this migration created it. Search finds
-- its operator wherever it is (sql/customers.sql, search_settings).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gist') THEN
        IF to_regnamespace('extensions') IS NOT NULL
           AND has_schema_privilege('extensions', 'CREATE') THEN
            CREATE EXTENSION btree_gist SCHEMA extensions;
        ELSE
            CREATE EXTENSION btree_gist;
        END IF;
        COMMENT ON EXTENSION btree_gist IS 'GiST support for bigint, for ordered customer search; created by customer_dal migration 0010_ordered_search, dropped by its rollback';
    END IF;
END
$$;

-- Bytes 6*part-5 .. 6*part of the folded name (C collation: byte order is
-- name order), zero-padded, as a number below 2^48: exact as a double, and a
-- shorter name sorts before a longer one that starts with it, because no text
-- holds a zero byte.
CREATE OR REPLACE FUNCTION customer_dal_name_key(name_folded text, part integer)
RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ('x0000' || rpad(encode(substr(textsend(name_folded), 6 * part - 5, 6), 'hex'), 12, '0'))::bit(64)::bigint;

COMMENT ON FUNCTION customer_dal_name_key(text, integer) IS 'Piece number part (1-4) of a folded name as a number that sorts like its 6 bytes: the keys of customers_search_ordered_idx, which orders search results by name.';

-- pg_trgm's operator class and btree_gist's live wherever their extensions
-- are: put their schemas on this session's search_path (customer_dal resets
-- the session after the migration).
SELECT set_config('search_path', current_setting('search_path') || string_agg(format(', %I', n.nspname), ''), false)
FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
WHERE e.extname IN ('pg_trgm', 'btree_gist');

-- A concurrent build's lock (SHARE UPDATE EXCLUSIVE) queues no reader or
-- writer; what it waits for is older transactions to end. Waiting costs
-- nobody, and giving up would throw the build away: wait longer.
SET lock_timeout = '5min';

-- (id + 0) and (search_folded || ''), not the bare columns: else the planner
-- may read this index for a lookup by id, which the primary key answers in a
-- fraction of the time, or for a bitmap of a rare fragment's matches, which
-- the GIN trigram index (customers_search_folded_trgm_idx) collects faster
-- than any test of signatures.
-- Signatures of 1,024 bytes: a leaf page's customers use a few thousand
-- distinct trigrams, and a shorter signature fills up and stops ruling pages
-- out (measured at 1,000,000 customers in docs/benchmarks.md).
CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_search_ordered_idx
    ON customers USING gist (
        customer_dal_name_key(name_folded, 1),
        customer_dal_name_key(name_folded, 2),
        customer_dal_name_key(name_folded, 3),
        customer_dal_name_key(name_folded, 4),
        (id + 0),
        (search_folded || '') gist_trgm_ops (siglen = 1024)
    );

-- A query with no trigram (1-2 characters, or no letter or digit) matches
-- name and e-mail prefixes only: names are a range of
-- customers_folded_order_idx, and e-mails a range of this one.
CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_email_folded_idx
    ON customers ((customer_dal_fold_text(email) COLLATE "C"));

SET lock_timeout = '500ms';

COMMENT ON INDEX customers_email_folded_idx IS 'E-mail addresses folded by customer_dal_fold_text, in the C collation: the e-mail prefixes a search of 1-2 characters matches.';

COMMENT ON INDEX customers_search_ordered_idx IS 'Search in name order: customers by the first 24 bytes of name_folded, then id, with the trigrams of search_folded, so an ordered scan skips every subtree without a match.';
