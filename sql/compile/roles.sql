--! Creates the spec's group roles, or fixes an existing one's attributes and comment.
--! Rendered by generator/src/sql/script.rs (`roles`); lines starting with --! are left out.
--!   {{spec_roles}}    ARRAY[...]::text[] of the spec's role names
--!   {{role_comment}}  the comment that marks a role as rowsec's, before its name (names.rs)
-- Group roles (spec: roles): NOLOGIN, no special attributes; people log in as their own roles,
-- members of these. Roles are shared by every database of the cluster: the lock serialises
-- rowsec scripts applied to two databases at once, and roles are only written when they differ.
LOCK TABLE pg_catalog.pg_authid IN SHARE ROW EXCLUSIVE MODE;
DO $rowsec$
DECLARE
    name text;
    r record;
BEGIN
    FOREACH name IN ARRAY {{spec_roles}} LOOP
        SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname = name;
        IF NOT FOUND THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', name);
        ELSIF r.rolcanlogin OR r.rolsuper OR r.rolbypassrls THEN
            RAISE EXCEPTION 'role "%" already exists and can log in, is a superuser or bypasses row-level security', name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'rowsec makes spec roles NOLOGIN group roles; rename the spec role or the existing role';
        ELSIF r.rolcreatedb OR r.rolcreaterole OR r.rolreplication THEN
            EXECUTE pg_catalog.format('ALTER ROLE %I NOCREATEDB NOCREATEROLE NOREPLICATION', name);
        END IF;
        IF pg_catalog.shobj_description((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = name), 'pg_authid')
           IS DISTINCT FROM {{role_comment}} || name THEN
            EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', name, {{role_comment}} || name);
        END IF;
    END LOOP;
END
$rowsec$;
