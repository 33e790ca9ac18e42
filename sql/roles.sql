-- Least-privilege roles for customer_dal.
--
-- Run by a DBA (a superuser, or a role that may create roles and change the
-- database's owner), connected to the application's database:
--
--     psql -v ON_ERROR_STOP=1 -v owner=shop_owner -v app=shop_app -v readonly=shop_readonly \
--          -d shop -f sql/roles.sql
--
-- Three roles, created NOLOGIN when missing (this file creates no login and no
-- password: give them with ALTER ROLE ... LOGIN PASSWORD, or grant the roles
-- to the people and services that log in):
--
--   owner     owns the database and everything the migrations create: run
--             `customer-dal migrate` / `rollback` as this role. Not a superuser:
--             as the database owner it may create schemas (customer_dal_migrations,
--             extensions), and owns schema public (PostgreSQL 15+: owned by
--             pg_database_owner). pg_trgm is created by this file (see below).
--   app       what the library's calls need and no more: SELECT, INSERT and
--             UPDATE on customers and users (no DELETE, no TRUNCATE, no DDL),
--             their identity sequences, EXECUTE on the functions the CHECKs
--             call (text_is_clean_line, text_is_clean_block), USAGE on schema
--             extensions (pg_trgm). No TEMP is needed: import's checked pass
--             uses no temporary table.
--   readonly  reads customers and users, and runs `customer-dal status`
--             (SELECT on the bookkeeping tables in customer_dal_migrations).
--
-- Idempotent: run it again at any time (before the first migration, after it,
-- after a new release); grants that exist are left as they are.
-- ALTER DEFAULT PRIVILEGES FOR ROLE owner gives the same rights on the tables,
-- sequences, functions and schemas that later migrations create, as long as the
-- owner role runs them. A database migrated earlier by another role: first
-- REASSIGN OWNED BY that_role TO owner (in this database), then run this file.
--
-- Hardening that affects every role of the database, so left to you:
--     REVOKE TEMP ON DATABASE shop FROM PUBLIC;      -- no role needs TEMP
--     REVOKE ALL ON SCHEMA public FROM PUBLIC;       -- app/readonly get USAGE below
--     REVOKE CONNECT ON DATABASE shop FROM PUBLIC;   -- the roles get CONNECT below

\set ON_ERROR_STOP on

-- The roles, when missing: NOLOGIN, no password.
SELECT format('CREATE ROLE %I NOLOGIN', name)
FROM unnest(ARRAY[:'owner', :'app', :'readonly']) AS name
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)
\gexec

-- The owner owns the database: it may create schemas and trusted extensions,
-- and owns schema public (pg_database_owner owns it on PostgreSQL 15+).
SELECT format('ALTER DATABASE %I OWNER TO %I', current_database(), :'owner')
\gexec

-- pg_trgm (customer search), created here, in its own schema extensions.
-- It is a trusted extension, so the owner could create it; but a non-superuser
-- does not own the functions of a trusted extension it creates, and migration
-- 0005 would then fail to move them out of public ("must be owner of function
-- set_limit"). Created here, the migrations leave it where it is and name it
-- by its schema; the owner's search_path in this database includes that schema
-- for the first migrations, which name gin_trgm_ops unqualified.
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA extensions;
SELECT format('ALTER ROLE %I IN DATABASE %I SET search_path = "$user", public, extensions',
              :'owner', current_database())
\gexec

-- app and readonly may connect (needed when CONNECT was revoked from PUBLIC).
SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), :'app', :'readonly')
\gexec

-- Schema public: app and readonly may look up the tables (needed when USAGE
-- was revoked from PUBLIC); no CREATE for them.
GRANT USAGE ON SCHEMA public TO :"app", :"readonly";

-- What exists already (when this runs after a migration).
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO :"app";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"readonly";

-- Schema extensions (pg_trgm), and the bookkeeping schema the first migration
-- creates, customer_dal_migrations (what `status` reads).
GRANT USAGE ON SCHEMA extensions TO :"owner", :"app", :"readonly";
SELECT format('GRANT USAGE ON SCHEMA customer_dal_migrations TO %I', :'readonly')
WHERE to_regnamespace('customer_dal_migrations') IS NOT NULL
\gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA customer_dal_migrations TO %I', :'readonly')
WHERE to_regnamespace('customer_dal_migrations') IS NOT NULL
\gexec

-- What the owner creates from now on (future migrations) is granted the same
-- way. Schemas: USAGE for both (it lets a role look names up, nothing more);
-- readonly may SELECT every table the owner creates (customers, users, the
-- bookkeeping); app's rights are limited to schema public.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner"
    GRANT USAGE ON SCHEMAS TO :"app", :"readonly";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner"
    GRANT SELECT ON TABLES TO :"readonly";
