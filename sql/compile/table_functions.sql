--! Compare before touch: the functions each table's block calls to tell whether the table is
--! already as this script makes it, to take away what rowsec gave on it, and to seal it.
--! They live in pg_temp (this session only, always called schema-qualified, so nothing can
--! shadow them) and pin their search_path. One DO block: psql prints one command tag.
--! Rendered by generator/src/sql/script.rs (`table_functions`); lines starting with --! are left out.
--!   {{protected_tables}}  the extension's registry of protected tables (extension_api.rs)
--!   {{owned_comment}}     LIKE pattern of the comments that mark roles and policies as rowsec's (names.rs)
--!   {{policy_names}}      LIKE pattern of rowsec's policy names (names.rs)
-- Compare before touch. A table's block changes the table (DDL: its ACCESS EXCLUSIVE lock) only
-- when the table is not as this script makes it: the registry keeps, per table, a SHA-256 of the
-- block that last built it and of the catalog state it left (rowsec's policies with their roles,
-- conditions and comments, row-level security flags, the privileges on the table, its columns
-- and its sequences, the registry row). Same block and same state: nothing to do. A
-- changed spec, a policy edited by hand, a revoked grant or a new column: the table is rebuilt.
DO $rowsec$
BEGIN
CREATE OR REPLACE FUNCTION pg_temp.rowsec_table_state(tbl regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    -- Read as PostgreSQL stores it (role OIDs, expression trees, whole ACLs), not deparsed: an
    -- unchanged re-run reads this for every table, and printing 100,000s of grants and every
    -- condition by name took most of its time. Any change still shows (a role dropped and made
    -- again has another OID; a grant by anyone changes the ACL, and the next run rebuilds that
    -- table once, keeping grants rowsec did not make).
    SELECT pg_catalog.concat_ws(E'\n',
        (SELECT 'registry ' || pg_catalog.concat_ws(' ', p.key_column, p.owner_column, p.sharing)
         FROM {{protected_tables}} p WHERE p.tbl = rowsec_table_state.tbl),
        (SELECT 'rls ' || pg_catalog.concat_ws(' ', c.relrowsecurity, c.relforcerowsecurity) || E'\nacl ' || c.relacl::text
         FROM pg_catalog.pg_class c WHERE c.oid = tbl),
        (SELECT pg_catalog.string_agg('column ' || pg_catalog.quote_ident(a.attname) || ' ' || coalesce(a.attacl::text, ''),
                E'\n' ORDER BY a.attnum)
         FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped),
        (SELECT pg_catalog.string_agg('sequence ' || s.oid::regclass::text || ' ' || coalesce(s.relacl::text, ''),
                E'\n' ORDER BY s.oid)
         FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
         WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = tbl
           AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'a'),
        (SELECT pg_catalog.string_agg('policy ' || pg_catalog.concat_ws(' ', pg_catalog.quote_ident(p.polname), p.polcmd,
                    p.polpermissive, p.polroles::text, p.polqual::text, p.polwithcheck::text, d.description),
                E'\n' ORDER BY p.polname)
         FROM pg_catalog.pg_policy p
         JOIN pg_catalog.pg_description d
           ON d.objoid = p.oid AND d.classoid = 'pg_catalog.pg_policy'::regclass AND d.objsubid = 0
         WHERE p.polrelid = tbl AND p.polname LIKE {{policy_names}} AND d.description LIKE {{owned_comment}}))
$fn$;

-- Whether the table is as the block `wanted` (its SHA-256) left it.
CREATE OR REPLACE FUNCTION pg_temp.rowsec_table_is(tbl regclass, wanted text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT coalesce((SELECT p.applied FROM {{protected_tables}} p WHERE p.tbl = rowsec_table_is.tbl)
                    = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
                          wanted || E'\n' || pg_temp.rowsec_table_state(tbl), 'UTF8')), 'hex'), false)
$fn$;

-- Records that the block `wanted` built the table, with the state it left.
CREATE OR REPLACE FUNCTION pg_temp.rowsec_seal_table(tbl regclass, wanted text) RETURNS void
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
    UPDATE {{protected_tables}} p
    SET applied = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
                      wanted || E'\n' || pg_temp.rowsec_table_state(tbl), 'UTF8')), 'hex')
    WHERE p.tbl = rowsec_seal_table.tbl
$fn$;

-- Takes away what rowsec gave on a table: its policies, and its roles' privileges on the table
-- (columns included) and on the table's sequences. The table's block then builds what the spec
-- gives; a table the spec no longer has keeps row-level security (fail closed).
CREATE OR REPLACE FUNCTION pg_temp.rowsec_release_table(tbl regclass) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    r record;
BEGIN
    -- The state before of a table (state.sql), kept for the summary the first time it changes.
    PERFORM pg_temp.rowsec_touch(tbl);
    FOR r IN
        SELECT p.polname FROM pg_catalog.pg_policy p
        WHERE p.polrelid = tbl AND p.polname LIKE {{policy_names}}
          AND pg_catalog.obj_description(p.oid, 'pg_policy') LIKE {{owned_comment}}
    LOOP
        EXECUTE pg_catalog.format('DROP POLICY %I ON %s', r.polname, tbl);
    END LOOP;
    -- One REVOKE per relation, from every rowsec role holding anything on it or its columns.
    FOR r IN
        WITH managed AS MATERIALIZED (
            SELECT pg_catalog.array_agg(d.objoid) AS oids FROM pg_catalog.pg_shdescription d
            WHERE d.classoid = 'pg_catalog.pg_authid'::regclass AND d.description LIKE {{owned_comment}}
        ), relations AS MATERIALIZED (
            SELECT c.oid, c.relkind, c.relacl FROM pg_catalog.pg_class c
            WHERE c.oid = tbl
               OR c.relkind = 'S' AND c.oid IN (SELECT d.objid FROM pg_catalog.pg_depend d
                        WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = tbl
                          AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'a')
        ), holders AS (
            SELECT rel.oid, x.grantee FROM relations rel CROSS JOIN LATERAL pg_catalog.aclexplode(rel.relacl) x
            UNION
            SELECT a.attrelid, x.grantee FROM pg_catalog.pg_attribute a CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x
            WHERE a.attrelid = tbl AND a.attacl IS NOT NULL
        )
        SELECT rel.oid::regclass AS rel, rel.relkind,
               -- regrole prints a quoted identifier already.
               pg_catalog.string_agg(h.grantee::pg_catalog.regrole::text, ', ' ORDER BY h.grantee) AS roles
        FROM relations rel JOIN holders h ON h.oid = rel.oid
        WHERE h.grantee = ANY ((SELECT oids FROM managed)::pg_catalog.oid[])
        GROUP BY rel.oid, rel.relkind
    LOOP
        -- On a table, also revokes the column privileges.
        EXECUTE pg_catalog.format('REVOKE ALL ON %s %s FROM %s',
                                  CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.rel, r.roles);
    END LOOP;
END
$fn$;
END
$rowsec$;
