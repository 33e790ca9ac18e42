--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: extensions; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA extensions;


--
-- Name: SCHEMA extensions; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA extensions IS 'Extensions'' objects, out of public; created by customer_dal migration 0005_schema_documentation, dropped by its rollback';


--
-- Name: customer_dal_fold; Type: COLLATION; Schema: public; Owner: -
--

CREATE COLLATION public.customer_dal_fold (provider = builtin, locale = 'C.UTF-8');


--
-- Name: COLLATION customer_dal_fold; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLLATION public.customer_dal_fold IS 'Unicode case folding for search, independent of the database''s LC_CTYPE: builtin C.UTF-8 (PostgreSQL 17+) or ICU root (und).';


--
-- Name: btree_gist; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA extensions;


--
-- Name: EXTENSION btree_gist; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION btree_gist IS 'GiST support for bigint, for ordered customer search; created by customer_dal migration 0010_ordered_search, dropped by its rollback';


--
-- Name: pg_trgm; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA extensions;


--
-- Name: EXTENSION pg_trgm; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pg_trgm IS 'trigram matching for customer search; created by customer_dal migration 0002_customers, dropped by its rollback';


--
-- Name: unaccent; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA extensions;


--
-- Name: EXTENSION unaccent; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION unaccent IS 'removes accents for customer search; created by customer_dal migration 0008_accent_folding, dropped by its rollback';


--
-- Name: customer_dal_fold_text(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.customer_dal_fold_text(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN lower((extensions.unaccent('extensions.unaccent'::regdictionary, lower(($1 COLLATE public.customer_dal_fold))) COLLATE public.customer_dal_fold));


--
-- Name: FUNCTION customer_dal_fold_text(text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.customer_dal_fold_text(text) IS 'Text as search compares it: lower case in every alphabet (collation customer_dal_fold), accents removed (unaccent), lower case again.';


--
-- Name: customer_dal_name_key(text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.customer_dal_name_key(name_folded text, part integer) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ((('x0000'::text || rpad(encode(substr(textsend(name_folded), ((6 * part) - 5), 6), 'hex'::text), 12, '0'::text)))::bit(64))::bigint;


--
-- Name: FUNCTION customer_dal_name_key(name_folded text, part integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.customer_dal_name_key(name_folded text, part integer) IS 'Piece number part (1-4) of a folded name as a number that sorts like its 6 bytes: the keys of customers_search_ordered_idx, which orders search results by name.';


--
-- Name: customer_dal_search_text(text, text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.customer_dal_search_text(name text, email text, phone text, phone_secondary text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN ((((((public.customer_dal_fold_text(name) || ''::text) || COALESCE(public.customer_dal_fold_text(email), ''::text)) || ''::text) || regexp_replace(phone, '[^0-9]'::text, ''::text, 'g'::text)) || ''::text) || COALESCE(regexp_replace(phone_secondary, '[^0-9]'::text, ''::text, 'g'::text), ''::text));


--
-- Name: FUNCTION customer_dal_search_text(name text, email text, phone text, phone_secondary text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.customer_dal_search_text(name text, email text, phone text, phone_secondary text) IS 'customers.search_folded of a row: folded name and e-mail and the phones'' digits, separated by U+001F.';


--
-- Name: customers_fold(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.customers_fold() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.name_folded := customer_dal_fold_text(NEW.name);
    NEW.search_folded := customer_dal_search_text(NEW.name, NEW.email, NEW.phone, NEW.phone_secondary);
    RETURN NEW;
END
$$;


--
-- Name: FUNCTION customers_fold(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.customers_fold() IS 'Sets customers.name_folded and search_folded from the columns they fold.';


--
-- Name: customers_touch_updated_at(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.customers_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    NEW.updated_at := greatest(now(), OLD.updated_at + interval '1 microsecond');
    RETURN NEW;
END
$$;


--
-- Name: FUNCTION customers_touch_updated_at(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.customers_touch_updated_at() IS 'Moves customers.updated_at forward on every UPDATE: to now(), or 1 microsecond past its old value when now() is not later. A version stamp: it never repeats and never goes back.';


--
-- Name: text_is_clean_block(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.text_is_clean_block(value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ((value !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'::text) AND (value IS NFC NORMALIZED));


--
-- Name: FUNCTION text_is_clean_block(value text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.text_is_clean_block(value text) IS 'True when the text has no control character but newline and tab, and is in normal form C: the rule of multi-line fields (address, notes).';


--
-- Name: text_is_clean_line(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.text_is_clean_line(value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN ((value !~ '[\x01-\x1f\x7f-\x9f]'::text) AND (value IS NFC NORMALIZED));


--
-- Name: FUNCTION text_is_clean_line(value text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.text_is_clean_line(value text) IS 'True when the text has no control character (Unicode category Cc) and is in normal form C: the rule of one-line fields (names, phones, e-mails).';


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: customers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.customers (
    id bigint NOT NULL,
    name character varying(100) NOT NULL,
    phone character varying(20) NOT NULL,
    phone_secondary character varying(20),
    email character varying(100),
    address text,
    notes text,
    is_active boolean DEFAULT true NOT NULL,
    created_by_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    phone_digits text GENERATED ALWAYS AS (regexp_replace((phone)::text, '[^0-9]'::text, ''::text, 'g'::text)) STORED NOT NULL,
    phone_secondary_digits text GENERATED ALWAYS AS (regexp_replace((phone_secondary)::text, '[^0-9]'::text, ''::text, 'g'::text)) STORED,
    name_key text GENERATED ALWAYS AS (lower(((name)::text COLLATE public.customer_dal_fold))) STORED NOT NULL COLLATE pg_catalog."C",
    search_text text GENERATED ALWAYS AS (((((((lower(((name)::text COLLATE public.customer_dal_fold)) || ''::text) || COALESCE(lower(((email)::text COLLATE public.customer_dal_fold)), ''::text)) || ''::text) || regexp_replace((phone)::text, '[^0-9]'::text, ''::text, 'g'::text)) || ''::text) || COALESCE(regexp_replace((phone_secondary)::text, '[^0-9]'::text, ''::text, 'g'::text), ''::text))) STORED NOT NULL,
    name_folded text NOT NULL COLLATE pg_catalog."C",
    search_folded text NOT NULL COLLATE pg_catalog."C",
    CONSTRAINT customers_address_clean CHECK (public.text_is_clean_block(address)),
    CONSTRAINT customers_address_length CHECK ((length(address) <= 1000)),
    CONSTRAINT customers_email_clean CHECK (public.text_is_clean_line((email)::text)),
    CONSTRAINT customers_email_shape CHECK (((email IS NULL) OR ((email)::text ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'::text))),
    CONSTRAINT customers_name_clean CHECK (public.text_is_clean_line((name)::text)),
    CONSTRAINT customers_name_not_blank CHECK (((name)::text ~ '\S'::text)),
    CONSTRAINT customers_notes_clean CHECK (public.text_is_clean_block(notes)),
    CONSTRAINT customers_notes_length CHECK ((length(notes) <= 100000)),
    CONSTRAINT customers_phone_clean CHECK (public.text_is_clean_line((phone)::text)),
    CONSTRAINT customers_phone_min_digits CHECK ((length(phone_digits) >= 7)),
    CONSTRAINT customers_phone_secondary_clean CHECK (public.text_is_clean_line((phone_secondary)::text)),
    CONSTRAINT customers_phone_secondary_min_digits CHECK (((phone_secondary IS NULL) OR (length(phone_secondary_digits) >= 7)))
);


--
-- Name: TABLE customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.customers IS 'The shop''s customers. Soft-deleted rows keep is_active = false. No balance is stored.';


--
-- Name: COLUMN customers.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.id IS 'Surrogate key, assigned by the database.';


--
-- Name: COLUMN customers.name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.name IS 'Full name as the customer gives it; 1-100 characters, not blank.';


--
-- Name: COLUMN customers.phone; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.phone IS 'Primary phone as typed; at least 7 digits; unique among active customers by its digits.';


--
-- Name: COLUMN customers.phone_secondary; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.phone_secondary IS 'Optional second phone as typed; at least 7 digits; may be shared (a family landline).';


--
-- Name: COLUMN customers.email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.email IS 'Optional e-mail address, normalised by the application.';


--
-- Name: COLUMN customers.address; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.address IS 'Optional postal address, free text; at most 1,000 characters, newlines and tabs allowed.';


--
-- Name: COLUMN customers.notes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.notes IS 'Optional free-text notes by the shop''s staff; at most 100,000 characters, newlines and tabs allowed.';


--
-- Name: COLUMN customers.is_active; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.is_active IS 'false once the customer is soft-deleted; the row and its history stay.';


--
-- Name: COLUMN customers.created_by_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.created_by_id IS 'The user who registered the customer; NULL when unknown or when that user was deleted.';


--
-- Name: COLUMN customers.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.created_at IS 'When the customer was registered (database clock).';


--
-- Name: COLUMN customers.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.updated_at IS 'When the row last changed, and its version: strictly increases on every UPDATE (trigger customers_touch_updated_at); compare it to detect concurrent edits.';


--
-- Name: COLUMN customers.phone_digits; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.phone_digits IS 'Digits of phone (generated): what uniqueness and phone search compare.';


--
-- Name: COLUMN customers.phone_secondary_digits; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.phone_secondary_digits IS 'Digits of phone_secondary (generated), for lookup and search.';


--
-- Name: COLUMN customers.name_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.name_key IS 'lower(name) folded by collation customer_dal_fold (generated). Not read by customer_dal since 0008 (see name_folded); kept so that rolling 0009 back never rewrites the table.';


--
-- Name: COLUMN customers.search_text; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.search_text IS 'Lower-case name, e-mail and phone digits (generated). Not read by customer_dal since 0008 (see search_folded); kept so that rolling 0009 back never rewrites the table.';


--
-- Name: COLUMN customers.name_folded; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.name_folded IS 'name folded by customer_dal_fold_text, compared in the C collation: the order of lists and search results, and what a name prefix matches. Kept by trigger customers_fold.';


--
-- Name: COLUMN customers.search_folded; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.search_folded IS 'customer_dal_search_text(name, email, phone, phone_secondary): what search matches. Kept by trigger customers_fold.';


--
-- Name: CONSTRAINT customers_address_clean ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_address_clean ON public.customers IS 'address: no control characters but newline and tab, Unicode normal form C (text_is_clean_block).';


--
-- Name: CONSTRAINT customers_address_length ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_address_length ON public.customers IS 'address has at most 1,000 characters (as CustomerCreate.address).';


--
-- Name: CONSTRAINT customers_email_clean ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_email_clean ON public.customers IS 'email: no control characters, Unicode normal form C (text_is_clean_line).';


--
-- Name: CONSTRAINT customers_email_shape ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_email_shape ON public.customers IS 'email, when given, has the shape of an address (one @, a dot in the domain, no spaces); the application checks it fully.';


--
-- Name: CONSTRAINT customers_name_clean ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_name_clean ON public.customers IS 'name: no control characters, Unicode normal form C (text_is_clean_line).';


--
-- Name: CONSTRAINT customers_name_not_blank ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_name_not_blank ON public.customers IS 'name has a character other than white space.';


--
-- Name: CONSTRAINT customers_notes_clean ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_notes_clean ON public.customers IS 'notes: no control characters but newline and tab, Unicode normal form C (text_is_clean_block).';


--
-- Name: CONSTRAINT customers_notes_length ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_notes_length ON public.customers IS 'notes has at most 100,000 characters (as CustomerCreate.notes), so every row fits one CSV record import reads.';


--
-- Name: CONSTRAINT customers_phone_clean ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_phone_clean ON public.customers IS 'phone: no control characters, Unicode normal form C (text_is_clean_line).';


--
-- Name: CONSTRAINT customers_phone_min_digits ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_phone_min_digits ON public.customers IS 'phone has at least 7 digits.';


--
-- Name: CONSTRAINT customers_phone_secondary_clean ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_phone_secondary_clean ON public.customers IS 'phone_secondary: no control characters, Unicode normal form C (text_is_clean_line).';


--
-- Name: CONSTRAINT customers_phone_secondary_min_digits ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_phone_secondary_min_digits ON public.customers IS 'phone_secondary, when given, has at least 7 digits.';


--
-- Name: customers_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.customers ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.customers_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id bigint NOT NULL,
    full_name text NOT NULL,
    email text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT users_email_clean CHECK (public.text_is_clean_line(email)),
    CONSTRAINT users_email_shape CHECK (((email IS NULL) OR (email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'::text))),
    CONSTRAINT users_full_name_clean CHECK (public.text_is_clean_line(full_name)),
    CONSTRAINT users_full_name_length CHECK ((length(full_name) <= 200)),
    CONSTRAINT users_full_name_not_blank CHECK ((full_name ~ '\S'::text))
);


--
-- Name: TABLE users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.users IS 'People who use the shop''s system; customers.created_by_id names the one who registered a customer. Minimal: customer_dal creates and reads them.';


--
-- Name: COLUMN users.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.users.id IS 'Surrogate key, assigned by the database.';


--
-- Name: COLUMN users.full_name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.users.full_name IS 'Name shown next to the records this user created; 1-200 characters, never blank.';


--
-- Name: COLUMN users.email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.users.email IS 'Optional login e-mail; unique ignoring case (index users_email_lower_key).';


--
-- Name: COLUMN users.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.users.created_at IS 'When the user was created (database clock).';


--
-- Name: CONSTRAINT users_email_clean ON users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT users_email_clean ON public.users IS 'email: no control characters, Unicode normal form C (text_is_clean_line).';


--
-- Name: CONSTRAINT users_email_shape ON users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT users_email_shape ON public.users IS 'email, when given, has the shape of an address (one @, a dot in the domain, no spaces); the application checks it fully.';


--
-- Name: CONSTRAINT users_full_name_clean ON users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT users_full_name_clean ON public.users IS 'full_name: no control characters, Unicode normal form C (text_is_clean_line).';


--
-- Name: CONSTRAINT users_full_name_length ON users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT users_full_name_length ON public.users IS 'full_name has at most 200 characters.';


--
-- Name: CONSTRAINT users_full_name_not_blank ON users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT users_full_name_not_blank ON public.users IS 'full_name has a character other than white space.';


--
-- Name: users_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.users ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.users_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (id);


--
-- Name: CONSTRAINT customers_pkey ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_pkey ON public.customers IS 'Primary key of customers.';


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: CONSTRAINT users_pkey ON users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT users_pkey ON public.users IS 'Primary key of users.';


--
-- Name: customers_active_phone_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX customers_active_phone_key ON public.customers USING btree (phone_digits) WHERE is_active;


--
-- Name: INDEX customers_active_phone_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_active_phone_key IS 'No two active customers share a primary phone, compared by digits; soft-deleted rows free the number.';


--
-- Name: customers_created_by_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX customers_created_by_id_idx ON public.customers USING btree (created_by_id);


--
-- Name: INDEX customers_created_by_id_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_created_by_id_idx IS 'Finds a user''s customers, so deleting a user (ON DELETE SET NULL) is no full scan.';


--
-- Name: customers_email_folded_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX customers_email_folded_idx ON public.customers USING btree (public.customer_dal_fold_text((email)::text) COLLATE "C");


--
-- Name: INDEX customers_email_folded_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_email_folded_idx IS 'E-mail addresses folded by customer_dal_fold_text, in the C collation: the e-mail prefixes a search of 1-2 characters matches.';


--
-- Name: customers_folded_order_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX customers_folded_order_idx ON public.customers USING btree (name_folded, id) INCLUDE (is_active, search_folded);


--
-- Name: INDEX customers_folded_order_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_folded_order_idx IS 'Lists and search results in folded-name order (name_folded, id); carries is_active and search_folded so search can filter from the index alone.';


--
-- Name: customers_phone_digits_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX customers_phone_digits_idx ON public.customers USING btree (phone_digits);


--
-- Name: INDEX customers_phone_digits_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_phone_digits_idx IS 'Exact look-up by primary phone digits (get_by_phone, search''s exact-phone tier), active or not.';


--
-- Name: customers_phone_secondary_digits_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX customers_phone_secondary_digits_idx ON public.customers USING btree (phone_secondary_digits);


--
-- Name: INDEX customers_phone_secondary_digits_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_phone_secondary_digits_idx IS 'Exact look-up by secondary phone digits (get_by_phone, search''s exact-phone tier).';


--
-- Name: INDEX customers_pkey; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_pkey IS 'Primary key of customers.';


--
-- Name: customers_search_folded_trgm_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX customers_search_folded_trgm_idx ON public.customers USING gin (search_folded extensions.gin_trgm_ops);


--
-- Name: INDEX customers_search_folded_trgm_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_search_folded_trgm_idx IS 'Trigram index on search_folded: substring search over folded name and e-mail and phone digits.';


--
-- Name: customers_search_ordered_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX customers_search_ordered_idx ON public.customers USING gist (public.customer_dal_name_key(name_folded, 1), public.customer_dal_name_key(name_folded, 2), public.customer_dal_name_key(name_folded, 3), public.customer_dal_name_key(name_folded, 4), ((id + 0)), ((search_folded || ''::text)) extensions.gist_trgm_ops (siglen='1024'));


--
-- Name: INDEX customers_search_ordered_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.customers_search_ordered_idx IS 'Search in name order: customers by the first 24 bytes of name_folded, then id, with the trigrams of search_folded, so an ordered scan skips every subtree without a match.';


--
-- Name: users_email_lower_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX users_email_lower_key ON public.users USING btree (lower(email));


--
-- Name: INDEX users_email_lower_key; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.users_email_lower_key IS 'One user per e-mail address, ignoring case (lower(email)).';


--
-- Name: INDEX users_pkey; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.users_pkey IS 'Primary key of users.';


--
-- Name: customers customers_fold; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER customers_fold BEFORE INSERT OR UPDATE OF name, email, phone, phone_secondary ON public.customers FOR EACH ROW EXECUTE FUNCTION public.customers_fold();


--
-- Name: TRIGGER customers_fold ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TRIGGER customers_fold ON public.customers IS 'Before every INSERT and every UPDATE of name, email or a phone: recomputes name_folded and search_folded (function customers_fold).';


--
-- Name: customers customers_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER customers_touch_updated_at BEFORE UPDATE ON public.customers FOR EACH ROW EXECUTE FUNCTION public.customers_touch_updated_at();


--
-- Name: TRIGGER customers_touch_updated_at ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TRIGGER customers_touch_updated_at ON public.customers IS 'Before every UPDATE: moves updated_at forward (function customers_touch_updated_at).';


--
-- Name: customers customers_created_by_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_created_by_id_fkey FOREIGN KEY (created_by_id) REFERENCES public.users(id) ON DELETE SET NULL;


--
-- Name: CONSTRAINT customers_created_by_id_fkey ON customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT customers_created_by_id_fkey ON public.customers IS 'created_by_id names a user; deleting the user sets it to NULL (the customer outlives the clerk).';


--
-- PostgreSQL database dump complete
--


