--! Drops or gives back the roles rowsec owns that this spec no longer has. After the tables'
--! blocks: a role is only dropped once it holds no privilege and no policy names it.
--! Rendered by generator/src/sql/script.rs (`drop_roles`); lines starting with --! are left out.
--!   {{spec_roles}}        ARRAY[...]::text[] of the spec's role names
--!   {{owned_comment}}     LIKE pattern of the comments that mark roles and policies as rowsec's (names.rs)
--!   {{role_comment}}      the comment that marks a role as rowsec's, before its name (names.rs)
--!   {{adopted}}           what follows the name on an adopted role, before its earlier comment
--!   {{adopted_bare}}      what follows the name on an adopted role that had no comment
--!   {{drop_roles_with_members}}  true or false: --drop-roles-with-members
-- Roles rowsec owns that this spec no longer has. An adopted role is given
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
