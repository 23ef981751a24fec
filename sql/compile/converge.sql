--! Removes what earlier scripts created and this spec does not have, outside the tables the spec
--! protects (each of those is compared, and rebuilt if it differs, by its own block).
--! Rendered by generator/src/sql/script.rs (`converge`); lines starting with --! are left out.
--!   {{spec_tables}}       ARRAY[...]::regclass[] of the spec's tables
--!   {{protected_tables}}  the extension's registry of protected tables (extension_api.rs)
--!   {{unprotect_table}}   the extension function that forgets a table (extension_api.rs)
--!   {{owned_comment}}     LIKE pattern of the comments that mark roles and policies as rowsec's (names.rs)
--!   {{policy_names}}      LIKE pattern of rowsec's policy names (names.rs)
--!   {{usage_schemas}}     ARRAY[...]::text[]: with {{usage_roles}}, the (schema, role) pairs of USAGE the spec gives
--!   {{usage_roles}}       ARRAY[...]::text[], as long as {{usage_schemas}}
-- Converge: tables an earlier spec protected (or that carry rowsec's policies) and this one does
-- not. rowsec takes back its policies and its roles' privileges and forgets them; row-level
-- security stays enabled (fail closed) until you decide: ALTER TABLE .. DISABLE ROW LEVEL SECURITY.
-- Then USAGE on their schemas that rowsec's roles hold and this spec does not give.
DO $rowsec$
DECLARE
    spec_tables regclass[] := {{spec_tables}};
    r record;
BEGIN
    FOR r IN
        SELECT tbl FROM {{protected_tables}} WHERE tbl <> ALL (spec_tables)
        UNION
        SELECT p.polrelid::regclass FROM pg_catalog.pg_policy p
        WHERE p.polrelid <> ALL (spec_tables) AND p.polname LIKE {{policy_names}}
          AND pg_catalog.obj_description(p.oid, 'pg_policy') LIKE {{owned_comment}}
    LOOP
        RAISE NOTICE 'rowsec: % is no longer in the spec: its rowsec policies and privileges are removed, row-level security stays enabled', r.tbl;
        PERFORM pg_temp.rowsec_release_table(r.tbl);
        PERFORM {{unprotect_table}}(r.tbl);
    END LOOP;
    FOR r IN
        SELECT n.nspname, o.rolname
        FROM pg_catalog.pg_namespace n CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) x
        JOIN pg_catalog.pg_roles o ON o.oid = x.grantee
        WHERE x.privilege_type = 'USAGE'
          AND pg_catalog.shobj_description(o.oid, 'pg_authid') LIKE {{owned_comment}}
          AND n.oid IN (SELECT c.relnamespace FROM pg_catalog.pg_class c
                        WHERE c.oid = ANY (spec_tables) OR c.oid IN (SELECT tbl FROM {{protected_tables}}))
          AND NOT EXISTS (SELECT FROM unnest({{usage_schemas}}, {{usage_roles}}) AS w(schema_name, role_name)
                          WHERE w.schema_name = n.nspname AND w.role_name = o.rolname)
    LOOP
        EXECUTE pg_catalog.format('REVOKE USAGE ON SCHEMA %I FROM %I', r.nspname, r.rolname);
    END LOOP;
END
$rowsec$;
