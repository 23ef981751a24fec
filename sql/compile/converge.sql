--! Removes what earlier scripts created, so that the rest of the script recreates exactly the spec.
--! Rendered by generator/src/sql/script.rs (`converge`); lines starting with --! are left out.
--!   {{spec_tables}}       ARRAY[...]::regclass[] of the spec's tables
--!   {{spec_roles}}        ARRAY[...]::text[] of the spec's role names
--!   {{protected_tables}}  the extension's registry of protected tables (extension_api.rs)
--!   {{unprotect_table}}   the extension function that forgets a table (extension_api.rs)
--!   {{owned_comment}}     LIKE pattern of the comments that mark roles and policies as rowsec's (names.rs)
--!   {{policy_names}}      LIKE pattern of rowsec's policy names (names.rs)
--!   {{role_comment}}      the comment that marks a role as rowsec's, before its name (names.rs)
--!   {{adopted}}           what follows the name on an adopted role, before its earlier comment
--!   {{adopted_bare}}      what follows the name on an adopted role that had no comment
--!   {{drop_roles_with_members}}  true or false: --drop-roles-with-members
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

-- Converge, part 3: roles rowsec owns that this spec no longer has. An adopted role is given
-- back (its earlier comment restored), never dropped. A role with members is kept unless the
-- script was compiled with --drop-roles-with-members, and then each membership it ends is named;
-- a role other objects depend on (privileges elsewhere, owned objects) is kept. Kept roles stay
-- NOLOGIN without privileges on protected tables.
DO $rowsec$
DECLARE
    r record;
    mark text;
    members text;
    drop_with_members boolean := {{drop_roles_with_members}};
BEGIN
    FOR r IN
        SELECT oid, rolname, pg_catalog.shobj_description(oid, 'pg_authid') AS comment FROM pg_catalog.pg_roles
        WHERE pg_catalog.shobj_description(oid, 'pg_authid') LIKE {{owned_comment}} AND rolname <> ALL ({{spec_roles}})
        ORDER BY rolname
    LOOP
        mark := {{role_comment}} || r.rolname;
        IF pg_catalog.starts_with(r.comment, mark || {{adopted}}) THEN
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', r.rolname, pg_catalog.substr(r.comment, pg_catalog.length(mark || {{adopted}}) + 1));
            RAISE NOTICE 'rowsec: role % (adopted) is no longer in the spec: given back with its earlier comment, not dropped', r.rolname;
            CONTINUE;
        ELSIF r.comment = mark || {{adopted_bare}} THEN
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS NULL', r.rolname);
            RAISE NOTICE 'rowsec: role % (adopted) is no longer in the spec: given back, not dropped', r.rolname;
            CONTINUE;
        END IF;
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(m.rolname), ', ' ORDER BY m.rolname) INTO members
        FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles m ON m.oid = am.member
        WHERE am.roleid = r.oid;
        IF EXISTS (SELECT FROM pg_catalog.pg_shdepend d
                   WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = r.oid) THEN
            RAISE NOTICE 'rowsec: role % is no longer in the spec but other objects depend on it; it is kept', r.rolname;
        ELSIF members IS NOT NULL AND NOT drop_with_members THEN
            RAISE NOTICE 'rowsec: role % is no longer in the spec but has members (%): it is kept, without privileges on protected tables', r.rolname, members
                USING HINT = 'revoke the memberships and apply again, or compile with --drop-roles-with-members to drop it and end them';
        ELSE
            IF members IS NOT NULL THEN
                RAISE NOTICE 'rowsec: role % is dropped (--drop-roles-with-members); memberships ended: %', r.rolname, members;
            END IF;
            EXECUTE pg_catalog.format('DROP ROLE %I', r.rolname);
        END IF;
    END LOOP;
END
$rowsec$;
