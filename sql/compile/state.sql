--! What rowsec manages in this database and cluster, one row per object, taken before the script
--! changes anything; the summary at the end (summary.sql) compares it with the state after.
--! Rendered by generator/src/sql/script.rs (`snapshot`); lines starting with --! are left out.
--!   {{spec_tables}}       ARRAY[...]::regclass[] of the spec's tables
--!   {{spec_roles}}        ARRAY[...]::text[] of the spec's role names
--!   {{protected_tables}}  the extension's registry of protected tables (extension_api.rs)
--!   {{owned_comment}}     LIKE pattern of the comments that mark roles and policies as rowsec's (names.rs)
--!   {{policy_names}}      LIKE pattern of rowsec's policy names (names.rs)
-- What rowsec manages, as it is before this script: roles (its own and the spec's), their
-- memberships, protected tables, rowsec's policies, and its roles' privileges on protected
-- tables, their sequences and schemas. The summary at the end of the script compares.
DO $rowsec$
BEGIN
    CREATE OR REPLACE TEMP VIEW rowsec_state (kind, object, state) AS
    WITH managed_roles AS (
        SELECT oid, rolname FROM pg_catalog.pg_roles
        WHERE pg_catalog.shobj_description(oid, 'pg_authid') LIKE {{owned_comment}} OR rolname = ANY ({{spec_roles}})
    ), managed_tables AS (
        SELECT c.oid FROM pg_catalog.pg_class c
        WHERE c.oid = ANY ({{spec_tables}}) OR c.oid IN (SELECT tbl FROM {{protected_tables}})
    ), managed_relations AS (
        SELECT oid FROM managed_tables
        UNION
        SELECT d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'a'
          AND d.refobjid IN (SELECT oid FROM managed_tables)
    )
    SELECT 'role'::text, r.rolname::text,
           pg_catalog.concat_ws(' ', r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication,
                                r.rolbypassrls, r.rolinherit, pg_catalog.shobj_description(r.oid, 'pg_authid'))
    FROM pg_catalog.pg_roles r JOIN managed_roles o ON o.oid = r.oid
    UNION ALL
    SELECT 'membership', pg_catalog.quote_ident(o.rolname) || ' <- ' || pg_catalog.quote_ident(m.rolname),
           pg_catalog.bool_or(am.admin_option)::text
    FROM pg_catalog.pg_auth_members am JOIN managed_roles o ON o.oid = am.roleid
    JOIN pg_catalog.pg_roles m ON m.oid = am.member
    GROUP BY o.rolname, m.rolname
    UNION ALL
    SELECT 'table', p.tbl::text,
           pg_catalog.concat_ws(' ', p.key_column, p.owner_column, p.sharing, c.relrowsecurity, c.relforcerowsecurity)
    FROM {{protected_tables}} p JOIN pg_catalog.pg_class c ON c.oid = p.tbl
    UNION ALL
    SELECT 'policy', p.polrelid::regclass::text || ' ' || pg_catalog.quote_ident(p.polname),
           pg_catalog.concat_ws(' ', p.polcmd, p.polpermissive, p.polroles::pg_catalog.regrole[]::text,
                                pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
                                pg_catalog.obj_description(p.oid, 'pg_policy'))
    FROM pg_catalog.pg_policy p
    WHERE p.polname LIKE {{policy_names}} AND pg_catalog.obj_description(p.oid, 'pg_policy') LIKE {{owned_comment}}
    UNION ALL
    SELECT 'privilege', c.oid::regclass::text || ' ' || pg_catalog.quote_ident(o.rolname) || ' ' || x.privilege_type, ''
    FROM pg_catalog.pg_class c JOIN managed_relations t ON t.oid = c.oid
    CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) x JOIN managed_roles o ON o.oid = x.grantee
    UNION ALL
    SELECT 'privilege', a.attrelid::regclass::text || '.' || pg_catalog.quote_ident(a.attname) || ' '
           || pg_catalog.quote_ident(o.rolname) || ' ' || x.privilege_type, ''
    FROM pg_catalog.pg_attribute a JOIN managed_tables t ON t.oid = a.attrelid
    CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x JOIN managed_roles o ON o.oid = x.grantee
    UNION ALL
    SELECT 'privilege', 'schema ' || pg_catalog.quote_ident(n.nspname) || ' ' || pg_catalog.quote_ident(o.rolname)
           || ' ' || x.privilege_type, ''
    FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) x
    JOIN managed_roles o ON o.oid = x.grantee;
    CREATE TEMP TABLE rowsec_before ON COMMIT DROP AS SELECT * FROM pg_temp.rowsec_state;
END
$rowsec$;
