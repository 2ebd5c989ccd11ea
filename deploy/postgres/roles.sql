-- One PostgreSQL role per service schema, and a read-only role for the operators (docs/deploy.md).
--
--   aqsha_payments, aqsha_bonus,   LOGIN. Each owns its schema (payments, bonus, billing, notify) and
--   aqsha_billing, aqsha_notify    everything in it, and has no right on any other schema, on the
--                                  public schema or to create schemas: a service migrates and uses
--                                  only its own data.
--   aqsha_ops                      LOGIN. USAGE and SELECT on the four schemas, read-only
--                                  transactions by default: `aqsha reconcile` and the CLI's reads.
--
-- Run it connected to the aqsha database as a superuser (or the database owner with CREATEROLE),
-- before the services start: compose runs it from /docker-entrypoint-initdb.d, in Kubernetes run it
-- once with `psql -v ON_ERROR_STOP=1 -f deploy/postgres/roles.sql`. Idempotent: running it again
-- changes nothing, and on a database whose schemas were migrated by another role (one shared
-- superuser DSN, as before) it hands each schema and everything in it to its service role.
-- Passwords are not set here: `ALTER ROLE ... PASSWORD` from your secret store (compose:
-- deploy/postgres/dev-passwords.sh). tests/integration/test_db_roles.py proves what each role can do.

DO $roles$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['aqsha_payments', 'aqsha_bonus', 'aqsha_billing', 'aqsha_notify',
                                     'aqsha_ops'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = role_name) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', role_name);
        END IF;
        -- Whatever the role had before: nothing beyond logging in.
        EXECUTE format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS',
                       role_name);
    END LOOP;
END
$roles$;

-- Only the aqsha roles (and the owner) may connect; nobody else may create schemas or temporary tables.
DO $database$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO aqsha_payments, aqsha_bonus, aqsha_billing, '
                   'aqsha_notify, aqsha_ops', current_database());
END
$database$;

-- Nothing in the public schema for anyone (PostgreSQL 15 already denies CREATE there; USAGE too now).
REVOKE ALL ON SCHEMA public FROM PUBLIC;

DO $schemas$
DECLARE
    schema_name text;
    owner_name text;
    obj record;
BEGIN
    FOREACH schema_name IN ARRAY ARRAY['payments', 'bonus', 'billing', 'notify'] LOOP
        owner_name := 'aqsha_' || schema_name;
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', schema_name, owner_name);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', schema_name, owner_name);
        -- Objects made before this script ran change hands too, so the service can keep migrating
        -- them. A sequence owned by a column (bigserial) moves with its table.
        FOR obj IN
            SELECT c.relname, c.relkind
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = schema_name
              AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND c.relowner <> owner_name::regrole
              AND NOT (c.relkind = 'S' AND EXISTS (
                  SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('a', 'i')))
        LOOP
            EXECUTE format('ALTER %s %I.%I OWNER TO %I',
                           CASE obj.relkind
                               WHEN 'S' THEN 'SEQUENCE'
                               WHEN 'v' THEN 'VIEW'
                               WHEN 'm' THEN 'MATERIALIZED VIEW'
                               WHEN 'f' THEN 'FOREIGN TABLE'
                               ELSE 'TABLE'
                           END,
                           schema_name, obj.relname, owner_name);
        END LOOP;
        FOR obj IN
            SELECT p.oid::regprocedure AS routine
            FROM pg_catalog.pg_proc p
            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = schema_name AND p.proowner <> owner_name::regrole
        LOOP
            EXECUTE format('ALTER ROUTINE %s OWNER TO %I', obj.routine, owner_name);
        END LOOP;
        -- No other service may even look into the schema; the operators may read it, including the
        -- tables later migrations create (default privileges of the owner).
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', schema_name);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO aqsha_ops', schema_name);
        EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO aqsha_ops', schema_name);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO aqsha_ops',
                       owner_name, schema_name);
        EXECUTE format('ALTER ROLE %I SET search_path = %I', owner_name, schema_name);
    END LOOP;
END
$schemas$;

-- The operators read, never write: no INSERT/UPDATE/DELETE grant anywhere, and read-only transactions
-- by default as a second guard.
ALTER ROLE aqsha_ops SET default_transaction_read_only = on;
