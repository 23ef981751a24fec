--! Masked views (spec: classes), step 2 of 2: one table's view in its masked-view schema, its
--! row filter and its INSTEAD OF trigger. Column lists are read from the catalog when the script
--! runs, so the view has every column of the table in its order, with or without --schema.
--! Rendered by generator/src/sql/masking.rs; lines starting with --! are left out.
--!   {{table}}        the protected table, as regclass
--!   {{view_schema}}  the schema of the view, as a literal
--!   {{view}}         the view's name (the table's), as a literal
--!   {{key}}          the table's key column, as a literal
--!   {{classed}}      the classed columns, literals (items of an ARRAY)
--!   {{exprs}}        for each classed column, in order, the SQL the view reads it with (literals)
--!   {{visible_fn}}   the row filter's name, as a literal
--!   {{write_fn}}     the trigger function's name, as a literal
--!   {{schema_mark}}  the comment that marks a schema as rowsec's masked-view schema
--!   {{comment}}      the view's comment (rowsec's mark)
--!   {{readers}}      roles that may select from the table, as one literal for format('%s')
--!   {{writers}}      for INSERT, UPDATE, DELETE in that order: roles that may, as literals for format('%s')
DO $rowsec$
DECLARE
    tbl regclass := {{table}};
    vs text := {{view_schema}};
    classed text[] := ARRAY[{{classed}}]::text[];
    exprs text[] := ARRAY[{{exprs}}]::text[];
    writers text[] := ARRAY[{{writers}}]::text[];
    privileges text[] := ARRAY['INSERT', 'UPDATE', 'DELETE'];
    view text;
    -- The table's name qualified whatever the search_path: the helpers pin theirs.
    tname text := (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.oid = {{table}});
    key_type text;
    missing text[];
    a record;
    i int;
    sel text[] := '{}';
    sets text[] := '{}';
    changed text := '';
    inserted text := '';
    body text;
BEGIN
    -- The view reads the table with its owner's rights: a superuser's, so that the row filter
    -- below (the reader's own row-level security) is the only one. A non-superuser would read
    -- no row at all (forced row-level security), so the script refuses to make such a view.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'rowsec: masked views must be created by a superuser'
            USING ERRCODE = '42501', HINT = 'Run the script as a superuser, as every rowsec script.';
    END IF;
    SELECT pg_catalog.array_agg(c) INTO missing FROM pg_catalog.unnest(classed || ARRAY[{{key}}]) c
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = tbl AND attname = c AND attnum > 0 AND NOT attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'rowsec: table % has no column %', tbl, pg_catalog.array_to_string(missing, ', ')
            USING ERRCODE = '42703', HINT = 'Fix tables.' || tbl::text || ' in the spec (rowsec compile --schema checks this before).';
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = vs) THEN
        IF pg_catalog.obj_description((SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = vs), 'pg_namespace')
           IS DISTINCT FROM {{schema_mark}} THEN
            RAISE EXCEPTION 'rowsec: schema % exists and is not rowsec''s: masked views of % cannot go there', vs, tbl
                USING ERRCODE = '42P06', HINT = 'Rename or drop that schema; rowsec puts masked views in <schema>_app.';
        END IF;
    ELSE
        EXECUTE pg_catalog.format('CREATE SCHEMA %I', vs);
        EXECUTE pg_catalog.format('COMMENT ON SCHEMA %I IS %L', vs, {{schema_mark}});
    END IF;
    EXECUTE pg_catalog.format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', vs);
    view := pg_catalog.format('%I.%I', vs, {{view}});
    SELECT pg_catalog.format_type(atttypid, atttypmod) INTO key_type FROM pg_catalog.pg_attribute
    WHERE attrelid = tbl AND attname = {{key}};

    -- The row filter: whether the reader sees the row in the table itself, under its row-level
    -- security (SECURITY INVOKER, never inlined: SET search_path).
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION %I.%I(%s) RETURNS boolean LANGUAGE sql STABLE SECURITY INVOKER '
        'SET search_path = pg_catalog, pg_temp AS %L',
        vs, {{visible_fn}}, key_type, pg_catalog.format('SELECT EXISTS (SELECT FROM %s WHERE %I = $1)', tname, {{key}}));
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %I.%I(%s) IS %L', vs, {{visible_fn}}, key_type, {{comment}});
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %I.%I(%s) FROM PUBLIC', vs, {{visible_fn}}, key_type);

    FOR a IN
        SELECT attname::text AS name FROM pg_catalog.pg_attribute
        WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped ORDER BY attnum
    LOOP
        i := pg_catalog.array_position(classed, a.name);
        IF i IS NULL THEN
            sel := sel || pg_catalog.format('%I', a.name);
            sets := sets || pg_catalog.format('%I = ($1).%I', a.name, a.name);
        ELSE
            sel := sel || (exprs[i] || pg_catalog.format(' AS %I', a.name));
            -- A classed column is written only when the statement changed what the view
            -- showed: writing back a masked value keeps the real one.
            changed := changed || pg_catalog.format(
                E'        IF NEW.%I IS DISTINCT FROM OLD.%I THEN sets := sets || %L::text; END IF;\n',
                a.name, a.name, pg_catalog.format('%I = ($1).%I', a.name, a.name));
        END IF;
        -- NULL (or left out) in an insert through the view: the table's default.
        inserted := inserted || pg_catalog.format(
            E'        IF NEW.%I IS NOT NULL THEN cols := cols || %L::text; vals := vals || %L::text; END IF;\n',
            a.name, pg_catalog.format('%I', a.name), pg_catalog.format('($1).%I', a.name));
    END LOOP;

    EXECUTE pg_catalog.format(
        E'CREATE VIEW %s WITH (security_barrier = true, security_invoker = false) AS\nSELECT %s\nFROM %s\nWHERE %I.%I(%I)',
        view, pg_catalog.array_to_string(sel, E',\n       '), tname, vs, {{visible_fn}}, {{key}});
    EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', view, {{comment}});
    EXECUTE pg_catalog.format('REVOKE ALL ON %s FROM PUBLIC', view);

    -- Writes: the reader's own statement on the table (SECURITY INVOKER), so its row-level
    -- security and column privileges decide, exactly as on the table.
    body := pg_catalog.format(E'DECLARE\n    sets text[] := %L;\n    cols text[] := ''{}'';\n    vals text[] := ''{}'';\n    n bigint;\nBEGIN\n', sets)
        || E'    IF TG_OP = ''INSERT'' THEN\n' || inserted
        || pg_catalog.format(E'        IF pg_catalog.cardinality(cols) = 0 THEN\n            EXECUTE %L;\n', pg_catalog.format('INSERT INTO %s DEFAULT VALUES', tname))
        || pg_catalog.format(E'        ELSE\n            EXECUTE pg_catalog.format(%L, pg_catalog.array_to_string(cols, '', ''), pg_catalog.array_to_string(vals, '', '')) USING NEW;\n        END IF;\n        RETURN NEW;\n', pg_catalog.format('INSERT INTO %s (%%s) VALUES (%%s)', tname))
        || E'    ELSIF TG_OP = ''UPDATE'' THEN\n' || changed
        || pg_catalog.format(E'        EXECUTE pg_catalog.format(%L, pg_catalog.array_to_string(sets, '', '')) USING NEW, OLD;\n', pg_catalog.format('UPDATE %s SET %%s WHERE %I = ($2).%I', tname, {{key}}, {{key}}))
        || E'        GET DIAGNOSTICS n = ROW_COUNT;\n        IF n > 0 THEN\n            RETURN NEW;\n        END IF;\n        RETURN NULL;\n    END IF;\n'
        || pg_catalog.format(E'    DELETE FROM %s WHERE %I = OLD.%I;\n', tname, {{key}}, {{key}})
        || E'    GET DIAGNOSTICS n = ROW_COUNT;\n    IF n > 0 THEN\n        RETURN OLD;\n    END IF;\n    RETURN NULL;\nEND\n';
    EXECUTE pg_catalog.format(
        'CREATE FUNCTION %I.%I() RETURNS trigger LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS %L',
        vs, {{write_fn}}, body);
    EXECUTE pg_catalog.format('COMMENT ON FUNCTION %I.%I() IS %L', vs, {{write_fn}}, {{comment}});
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %I.%I() FROM PUBLIC', vs, {{write_fn}});
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER rowsec_write INSTEAD OF INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %I.%I()',
        view, vs, {{write_fn}});

    IF {{readers}} <> '' THEN
        EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO %s', vs, {{readers}});
        EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %s', view, {{readers}});
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %I.%I(%s) TO %s', vs, {{visible_fn}}, key_type, {{readers}});
    END IF;
    FOR i IN 1 .. 3 LOOP
        IF writers[i] <> '' THEN
            EXECUTE pg_catalog.format('GRANT %s ON %s TO %s', privileges[i], view, writers[i]);
        END IF;
    END LOOP;
END
$rowsec$;
