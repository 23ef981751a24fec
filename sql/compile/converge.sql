--! Removes what earlier scripts created, so that the rest of the script recreates exactly the spec.
--! Rendered by generator/src/sql/script.rs (`converge`); lines starting with --! are left out.
--!   {{spec_tables}}       ARRAY[...]::regclass[] of the spec's tables
--!   {{spec_roles}}        ARRAY[...]::text[] of the spec's role names
--!   {{protected_tables}}  the extension's registry of protected tables (extension_api.rs)
--!   {{unprotect_table}}   the extension function that forgets a table (extension_api.rs)
--!   {{owned_comment}}     LIKE pattern of the comments that mark roles and policies as rowsec's (names.rs)
--!   {{policy_names}}      LIKE pattern of rowsec's policy names (names.rs)
-- Converge, part 1: remove every policy rowsec created and every privilege rowsec's roles hold
-- on the tables rowsec protects now or protected before; the sections below recreate exactly
-- what this spec gives.
DO $rowsec$
DECLARE
    spec_tables regclass[] := {{spec_tables}};
    managed_tables regclass[];
    managed_roles text[];
    r record;
BEGIN
    managed_tables := spec_tables || ARRAY(SELECT tbl FROM {{protected_tables}});
    SELECT coalesce(array_agg(rolname), '{}') INTO managed_roles FROM pg_catalog.pg_roles
        WHERE pg_catalog.shobj_description(oid, 'pg_authid') LIKE {{owned_comment}};
    FOR r IN
        SELECT p.polname, p.polrelid::regclass AS tbl FROM pg_catalog.pg_policy p
        WHERE p.polname LIKE {{policy_names}} AND pg_catalog.obj_description(p.oid, 'pg_policy') LIKE {{owned_comment}}
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON %s', r.polname, r.tbl);
    END LOOP;
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relkind, n.nspname, a.rolname
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN unnest(managed_roles) AS a(rolname)
        WHERE c.oid = ANY (managed_tables)
           OR c.relkind = 'S' AND c.oid IN (SELECT d.objid FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY (managed_tables)
                          AND d.deptype = 'a')
    LOOP
        IF r.relkind = 'S' THEN
            EXECUTE pg_catalog.format('REVOKE ALL ON SEQUENCE %s FROM %I', r.rel, r.rolname);
        ELSE
            -- Also revokes the column privileges.
            EXECUTE pg_catalog.format('REVOKE ALL ON TABLE %s FROM %I', r.rel, r.rolname);
            EXECUTE pg_catalog.format('REVOKE USAGE ON SCHEMA %I FROM %I', r.nspname, r.rolname);
        END IF;
    END LOOP;
END
$rowsec$;

-- Converge, part 2: tables an earlier spec protected and this one does not. rowsec forgets them;
-- row-level security stays enabled (fail closed) until you decide: ALTER TABLE .. DISABLE ROW LEVEL SECURITY.
DO $rowsec$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT tbl FROM {{protected_tables}} WHERE tbl <> ALL ({{spec_tables}}) LOOP
        RAISE NOTICE 'rowsec: % is no longer in the spec: its rowsec policies and privileges are removed, row-level security stays enabled', t;
        PERFORM {{unprotect_table}}(t);
    END LOOP;
END
$rowsec$;

-- Converge, part 3: roles rowsec created that this spec no longer has. Dropped when nothing
-- else refers to them; otherwise kept (NOLOGIN, without privileges on protected tables).
DO $rowsec$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT rolname FROM pg_catalog.pg_roles
        WHERE pg_catalog.shobj_description(oid, 'pg_authid') LIKE {{owned_comment}} AND rolname <> ALL ({{spec_roles}})
    LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_roles a ON d.refobjid = a.oid
                   WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND a.rolname = name) THEN
            RAISE NOTICE 'rowsec: role % is no longer in the spec but other objects depend on it; it is kept', name;
        ELSE
            EXECUTE pg_catalog.format('DROP ROLE %I', name);
        END IF;
    END LOOP;
END
$rowsec$;
