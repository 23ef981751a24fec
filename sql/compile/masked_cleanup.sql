--! Masked views (spec: classes), step 1 of 2: removes every view and helper rowsec made for
--! masked columns, so that step 2 (masked_view.sql, one block per table) recreates exactly what
--! the spec asks for; a schema rowsec made for them that the spec no longer needs is dropped
--! once empty. What was there is kept in pg_temp.rowsec_masked_before for the notice at the end.
--! Rendered by generator/src/sql/masking.rs; lines starting with --! are left out.
--!   {{schema_mark}}   the comment that marks a schema as rowsec's masked-view schema
--!   {{object_mark}}   LIKE pattern of the comments of rowsec's masked views and helpers
--!   {{view_schemas}}  ARRAY[...]::text[] of the schemas this spec's masked views live in
--!   {{views}}         ARRAY[...]::text[] of this spec's masked views, as schema.view text
-- Masked views (spec: classes): rowsec's earlier views and helpers are removed, then recreated
-- from the spec below. A view or function of yours that depends on one stops the script here
-- (drop it first, recreate it after).
DO $rowsec$
DECLARE
    r record;
BEGIN
    CREATE TEMP TABLE rowsec_masked_before ON COMMIT DROP AS
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS view,
           pg_catalog.concat_ws(' ', pg_catalog.pg_get_viewdef(c.oid), c.relacl::text, c.reloptions::text) AS state
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'v' AND pg_catalog.obj_description(n.oid, 'pg_namespace') = {{schema_mark}}
      AND pg_catalog.obj_description(c.oid, 'pg_class') LIKE {{object_mark}};
    FOR r IN
        SELECT c.oid::regclass AS view, pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
        FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'v' AND pg_catalog.obj_description(n.oid, 'pg_namespace') = {{schema_mark}}
          AND pg_catalog.obj_description(c.oid, 'pg_class') LIKE {{object_mark}}
        ORDER BY 2
    LOOP
        EXECUTE pg_catalog.format('DROP VIEW %s', r.view);
        IF NOT r.name = ANY ({{views}}) THEN
            RAISE NOTICE 'rowsec: masked view % removed (the spec no longer masks its table)', r.name;
        END IF;
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS fn
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE pg_catalog.obj_description(n.oid, 'pg_namespace') = {{schema_mark}}
          AND pg_catalog.obj_description(p.oid, 'pg_proc') LIKE {{object_mark}}
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', r.fn);
    END LOOP;
    FOR r IN
        SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
        WHERE pg_catalog.obj_description(n.oid, 'pg_namespace') = {{schema_mark}}
          AND NOT n.nspname = ANY ({{view_schemas}})
    LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_class WHERE relnamespace = r.oid)
           OR EXISTS (SELECT FROM pg_catalog.pg_proc WHERE pronamespace = r.oid)
           OR EXISTS (SELECT FROM pg_catalog.pg_type WHERE typnamespace = r.oid) THEN
            RAISE NOTICE 'rowsec: schema % kept: it no longer holds masked views, but objects of yours', r.nspname;
        ELSE
            EXECUTE pg_catalog.format('DROP SCHEMA %I', r.nspname);
        END IF;
    END LOOP;
END
$rowsec$;
