--! Refuses to go on while PUBLIC holds privileges on a table with classed columns.
--! Rendered by generator/src/sql/script.rs (`public_check`); lines starting with --! are left out.
--!   {{classed_tables}}  ARRAY[...]::regclass[] of the tables with classed columns
-- Column classes cannot hold if PUBLIC may read or write a classed table.
DO $rowsec$
DECLARE
    t regclass;
BEGIN
    FOR t IN
        SELECT c.oid::regclass FROM pg_catalog.pg_class c
        WHERE c.oid = ANY ({{classed_tables}})
          AND (EXISTS (SELECT FROM pg_catalog.aclexplode(c.relacl) x WHERE x.grantee = 0)
               OR EXISTS (SELECT FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) x
                          WHERE a.attrelid = c.oid AND x.grantee = 0))
    LOOP
        RAISE EXCEPTION 'PUBLIC holds privileges on %, which has classed columns', t
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC; then grant what people need through the spec', t);
    END LOOP;
END
$rowsec$;
