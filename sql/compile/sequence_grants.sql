--! USAGE on the sequences behind a table's serial columns, for the roles that insert.
--! A block inside the table's DO block (script.rs wraps it); lines starting with --! are left out.
--! Rendered by generator/src/sql/script.rs (`sequences`).
--!   {{table}}  the table, as a regclass
--!   {{roles}}  one literal: the roles' quoted names, comma-separated
DECLARE
    seq regclass;
BEGIN
    FOR seq IN
        SELECT d.objid::regclass FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relkind = 'S'
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refobjid = {{table}} AND d.deptype = 'a'
    LOOP
        EXECUTE pg_catalog.format('GRANT USAGE ON SEQUENCE %s TO %s', seq, {{roles}});
    END LOOP;
END;
