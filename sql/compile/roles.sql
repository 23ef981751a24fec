--! Creates the spec's group roles, or fixes an existing one's attributes and comment.
--! Rendered by generator/src/sql/script.rs (`roles`); lines starting with --! are left out.
--!   {{spec_roles}}      ARRAY[...]::text[] of the spec's role names
--!   {{adopt_roles}}     ARRAY[...]::text[] of the spec roles with `adopt: true`
--!   {{role_comment}}    the comment that marks a role as rowsec's, before its name (names.rs)
--!   {{adopted}}         what follows the name on an adopted role, before its earlier comment
--!   {{adopted_bare}}    what follows the name on an adopted role that had no comment
--! The script locks pg_authid just before this block (script.rs `roles`: how depends on the backend).
-- Group roles (spec: roles): NOLOGIN, no special attributes; people log in as their own roles,
-- members of these. Roles are shared by every database of the cluster: the lock above serialises
-- rowsec scripts applied to two databases at once, and roles are only written when they differ.
-- A role that exists without rowsec's mark belongs to someone else: it is taken over only when
-- the spec says `adopt: true`, and its comment is kept in rowsec's mark to be given back.
DO $rowsec$
DECLARE
    name text;
    r record;
    mark text;
    comment text;
    members text;
BEGIN
    FOREACH name IN ARRAY {{spec_roles}} LOOP
        mark := {{role_comment}} || name;
        SELECT *, pg_catalog.shobj_description(oid, 'pg_authid') AS comment INTO r
        FROM pg_catalog.pg_roles WHERE rolname = name;
        IF NOT FOUND THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', name);
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', name, mark);
            CONTINUE;
        END IF;
        IF r.rolcanlogin OR r.rolsuper OR r.rolbypassrls THEN
            RAISE EXCEPTION 'role "%" already exists and can log in, is a superuser or bypasses row-level security', name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'rowsec makes spec roles NOLOGIN group roles; rename the spec role or the existing role';
        END IF;
        IF r.comment IS NOT DISTINCT FROM mark
           OR pg_catalog.starts_with(r.comment, mark || {{adopted}})
           OR r.comment = mark || {{adopted_bare}} THEN
            NULL;  -- rowsec's already
        ELSIF name = ANY ({{adopt_roles}}) THEN
            comment := CASE WHEN r.comment IS NULL THEN mark || {{adopted_bare}} ELSE mark || {{adopted}} || r.comment END;
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', name, comment);
            RAISE NOTICE 'rowsec: existing role % adopted (adopt: true); its comment % is kept to be restored if the spec drops it',
                name, coalesce(pg_catalog.quote_literal(r.comment), '(none)');
        ELSE
            SELECT pg_catalog.string_agg(pg_catalog.quote_ident(m.rolname), ', ' ORDER BY m.rolname) INTO members
            FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles m ON m.oid = am.member
            WHERE am.roleid = r.oid;
            RAISE EXCEPTION 'role "%" already exists and was not created by rowsec', name
                USING ERRCODE = 'duplicate_object',
                      DETAIL = pg_catalog.format('Its comment is %s; its members are %s. rowsec does not take over a role it did not create.',
                                                 coalesce(pg_catalog.quote_literal(r.comment), 'empty'), coalesce(members, 'none')),
                      HINT = pg_catalog.format('To let rowsec manage it, add `adopt: true` under roles.%s in the spec (rowsec then keeps its members and gives it back when the spec drops it); otherwise rename the spec role.', name);
        END IF;
        IF r.rolcreatedb OR r.rolcreaterole OR r.rolreplication THEN
            EXECUTE pg_catalog.format('ALTER ROLE %I NOCREATEDB NOCREATEROLE NOREPLICATION', name);
        END IF;
    END LOOP;
END
$rowsec$;
