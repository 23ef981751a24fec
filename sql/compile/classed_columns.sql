--! Stops the script when a classed column of a table does not exist. Only without --schema:
--! with it, rowsec compile checked every column before writing SQL. Without this check a
--! misspelt classed column would go unnoticed whenever no role lacks its class.
--! Rendered by generator/src/sql/script.rs (`classed_columns`); lines starting with --! are left out.
--!   {{table}}    the table, as a regclass
--!   {{classed}}  the table's classed columns, as literals
DO $rowsec$
DECLARE
    missing text;
    n bigint;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('"%s"', c), ', ' ORDER BY i), pg_catalog.count(*) INTO missing, n
    FROM pg_catalog.unnest(ARRAY[{{classed}}]::name[]) WITH ORDINALITY AS classed(c, i)
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = {{table}} AND a.attname = classed.c AND a.attnum > 0 AND NOT a.attisdropped);
    IF n > 0 THEN
        RAISE EXCEPTION '%', pg_catalog.format('classed column%s %s of %s %s', CASE WHEN n > 1 THEN 's' ELSE '' END,
                                               missing, {{table}}, CASE WHEN n > 1 THEN 'do not exist' ELSE 'does not exist' END)
            USING ERRCODE = 'undefined_column',
                  DETAIL = pg_catalog.format('%s has the columns %s.', {{table}},
                      (SELECT pg_catalog.string_agg(attname, ', ' ORDER BY attnum) FROM pg_catalog.pg_attribute
                       WHERE attrelid = {{table}} AND attnum > 0 AND NOT attisdropped)),
                  HINT = pg_catalog.format('Correct `columns` of table %s in the spec, or add the column; '
                      'rowsec compile --schema checks column names before it writes any SQL.', {{table}});
    END IF;
END
$rowsec$;
