--! What rowsec manages in this database and cluster, one row per object, as it is before the script
--! changes it; the summary at the end (summary.sql) compares it with the state after.
--! Rendered by generator/src/sql/script.rs (`snapshot`); lines starting with --! are left out.
--!   {{spec_roles}}        ARRAY[...]::text[] of the spec's role names
--!   {{protected_tables}}  the extension's registry of protected tables (extension_api.rs)
--!   {{owned_comment}}     LIKE pattern of the comments that mark roles and policies as rowsec's (names.rs)
--!   {{policy_names}}      LIKE pattern of rowsec's policy names (names.rs)
-- What rowsec manages, as it is before this script: roles (its own and the spec's), their
-- memberships and their schema privileges, read now; the part of each table (its registry row,
-- the policies and privileges of rowsec on it, its columns and sequences) is read just
-- before the script first changes it (pg_temp.rowsec_release_table, the only way a block
-- changes a table). A table the script leaves alone is the same after, so an unchanged re-run
-- never reads the 100,000s of column privileges of a large spec. The summary at the end compares.
DO $rowsec$
BEGIN
    CREATE OR REPLACE TEMP VIEW rowsec_managed_roles (oid, rolname) AS
    SELECT r.oid, r.rolname FROM pg_catalog.pg_roles r
    WHERE r.oid IN (SELECT d.objoid FROM pg_catalog.pg_shdescription d
                    WHERE d.classoid = 'pg_catalog.pg_authid'::regclass AND d.description LIKE {{owned_comment}})
       OR r.rolname = ANY ({{spec_roles}});
    CREATE OR REPLACE TEMP VIEW rowsec_state (kind, object, state) AS
    SELECT 'role'::text, r.rolname::text,
           pg_catalog.concat_ws(' ', r.rolcanlogin, r.rolsuper, r.rolcreatedb, r.rolcreaterole, r.rolreplication,
                                r.rolbypassrls, r.rolinherit, pg_catalog.shobj_description(r.oid, 'pg_authid'))
    FROM pg_catalog.pg_roles r JOIN pg_temp.rowsec_managed_roles o ON o.oid = r.oid
    UNION ALL
    SELECT 'membership', pg_catalog.quote_ident(o.rolname) || ' <- ' || pg_catalog.quote_ident(m.rolname),
           pg_catalog.bool_or(am.admin_option)::text
    FROM pg_catalog.pg_auth_members am JOIN pg_temp.rowsec_managed_roles o ON o.oid = am.roleid
    JOIN pg_catalog.pg_roles m ON m.oid = am.member
    GROUP BY o.rolname, m.rolname
    UNION ALL
    SELECT 'privilege', 'schema ' || pg_catalog.quote_ident(n.nspname) || ' ' || pg_catalog.quote_ident(o.rolname)
           || ' ' || x.privilege_type, ''
    FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) x
    JOIN pg_temp.rowsec_managed_roles o ON o.oid = x.grantee;
    CREATE TEMP TABLE rowsec_before ON COMMIT DROP AS SELECT * FROM pg_temp.rowsec_state;
    -- The tables whose part of the state rowsec_before holds.
    CREATE TEMP TABLE rowsec_touched (tbl pg_catalog.oid PRIMARY KEY) ON COMMIT DROP;

-- One table: the part of the state its block (or converge) may change.
CREATE OR REPLACE FUNCTION pg_temp.rowsec_table_snapshot(tbl regclass) RETURNS TABLE (kind text, object text, state text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    WITH relations AS MATERIALIZED (
        SELECT tbl::oid AS oid
        UNION ALL
        SELECT d.objid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = tbl
          AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'a'
    ), managed_roles AS MATERIALIZED (
        SELECT oid, rolname FROM pg_temp.rowsec_managed_roles
    )
    SELECT 'table'::text, p.tbl::text,
           pg_catalog.concat_ws(' ', p.key_column, p.owner_column, p.sharing, c.relrowsecurity, c.relforcerowsecurity)
    FROM {{protected_tables}} p JOIN pg_catalog.pg_class c ON c.oid = p.tbl
    WHERE p.tbl = rowsec_table_snapshot.tbl
    UNION ALL
    SELECT 'policy', p.polrelid::regclass::text || ' ' || pg_catalog.quote_ident(p.polname),
           pg_catalog.concat_ws(' ', p.polcmd, p.polpermissive, p.polroles::pg_catalog.regrole[]::text,
                                pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid),
                                pg_catalog.obj_description(p.oid, 'pg_policy'))
    FROM pg_catalog.pg_policy p
    WHERE p.polrelid = tbl AND p.polname LIKE {{policy_names}}
      AND pg_catalog.obj_description(p.oid, 'pg_policy') LIKE {{owned_comment}}
    UNION ALL
    SELECT 'privilege', c.oid::regclass::text || ' ' || pg_catalog.quote_ident(o.rolname) || ' ' || x.privilege_type, ''
    FROM pg_catalog.pg_class c JOIN relations t ON t.oid = c.oid
    CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) x JOIN managed_roles o ON o.oid = x.grantee
    UNION ALL
    SELECT 'privilege', a.attrelid::regclass::text || '.' || pg_catalog.quote_ident(a.attname) || ' '
           || pg_catalog.quote_ident(o.rolname) || ' ' || x.privilege_type, ''
    FROM pg_catalog.pg_attribute a CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x
    JOIN managed_roles o ON o.oid = x.grantee
    WHERE a.attrelid = tbl AND a.attacl IS NOT NULL
$fn$;

-- Keeps the part of the state of a table as it is now, the first time the script changes it.
CREATE OR REPLACE FUNCTION pg_temp.rowsec_touch(tbl regclass) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
    WITH first AS (
        INSERT INTO pg_temp.rowsec_touched (tbl) VALUES (tbl) ON CONFLICT DO NOTHING RETURNING 1
    )
    INSERT INTO pg_temp.rowsec_before
    SELECT s.* FROM pg_temp.rowsec_table_snapshot(tbl) s WHERE EXISTS (SELECT FROM first)
$fn$;
END
$rowsec$;
