-- Queries of customer_dal.bench: the baselines `make bench` measures against.
-- They run only in the bench's own scratch databases.


-- name: story_schema
-- The original story's design, in a schema of its own: the same columns, the
-- six B-tree indexes it planned, no trigram index and no digit columns.
CREATE SCHEMA story;
CREATE TABLE story.customers (
    id               bigint PRIMARY KEY,
    name             varchar(100) NOT NULL,
    phone            varchar(20) NOT NULL,
    phone_secondary  varchar(20),
    email            varchar(100),
    address          text,
    notes            text,
    is_active        boolean NOT NULL DEFAULT true,
    created_by_id    bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_customers_phone ON story.customers (phone);
CREATE INDEX idx_customers_phone_secondary ON story.customers (phone_secondary);
CREATE INDEX idx_customers_email ON story.customers (email);
CREATE INDEX idx_customers_active ON story.customers (is_active);
CREATE INDEX idx_customer_search ON story.customers (name, phone, phone_secondary);
CREATE INDEX idx_customer_active_name ON story.customers (is_active, name);


-- name: story_fill
-- The same customers as the real table.
INSERT INTO story.customers (id, name, phone, phone_secondary, email, address, notes,
                             is_active, created_by_id, created_at, updated_at)
SELECT id, name, phone, phone_secondary, email, address, notes, is_active, created_by_id,
       created_at, updated_at
FROM public.customers;


-- name: story_search
-- The story's search: unordered ILIKE over four columns, OFFSET/LIMIT.
SELECT *
FROM story.customers
WHERE is_active
  AND (name ILIKE %(pattern)s
       OR phone LIKE %(pattern)s
       OR phone_secondary LIKE %(pattern)s
       OR email ILIKE %(pattern)s)
OFFSET %(offset)s LIMIT 20;


-- name: raw_copy_table
-- A second customers table with the same columns, constraints and indexes, for
-- the raw COPY that import is compared with; and the same trigger folding
-- names for search (LIKE copies no triggers).
CREATE SCHEMA raw_copy;
CREATE TABLE raw_copy.customers (LIKE public.customers INCLUDING ALL);
CREATE TRIGGER customers_fold
    BEFORE INSERT OR UPDATE OF name, email, phone, phone_secondary ON raw_copy.customers
    FOR EACH ROW
    EXECUTE FUNCTION public.customers_fold();


-- name: raw_copy
-- Plain COPY of the CSV file, no validation.
COPY raw_copy.customers (name, phone, phone_secondary, email, address, notes, is_active)
FROM STDIN WITH (FORMAT csv, HEADER true);


-- name: drop_raw_copy
-- Done with the raw COPY's table.
DROP SCHEMA raw_copy CASCADE;


-- name: vacuum_analyze
-- Settle the freshly loaded tables as autovacuum would in time: statistics,
-- the visibility map, and the GIN indexes' pending lists merged (until then
-- every trigram search scans the pending list).
VACUUM ANALYZE;


-- name: server_settings
-- The settings that shape the figures, printed with them.
SELECT name, setting, unit
FROM pg_settings
WHERE name IN ('server_version', 'shared_buffers', 'work_mem', 'effective_cache_size',
               'random_page_cost', 'max_parallel_workers_per_gather', 'jit',
               'lc_collate', 'lc_ctype')
ORDER BY name;


-- name: sample_customers
-- Customers to build the query mix from, chosen deterministically.
SELECT name, phone_digits, email
FROM customers
WHERE is_active AND id %% %(every)s = 0
ORDER BY id
LIMIT %(limit)s;


-- name: active_ids
-- The active customers the repository-call benchmark reads and changes.
SELECT id
FROM customers
WHERE is_active
ORDER BY id;


-- name: active_phones
-- Phones, as typed, for the get_by_phone benchmark.
SELECT phone
FROM customers
WHERE is_active
ORDER BY id
LIMIT 5000;


-- name: rare_surnames
-- Surnames that only a handful of customers have.
SELECT split_part(name, ' ', 2) AS surname
FROM customers
GROUP BY 1
HAVING count(*) BETWEEN 1 AND 5
ORDER BY 1
LIMIT %(limit)s;
