--! Column-level grants for roles that lack some column classes, when the columns are not
--! known at compile time (no --schema): every column but the hidden ones, read from the catalog.
--! That the hidden columns exist was checked before, once per table (classed_columns.sql).
--! A block inside the table's DO block (script.rs wraps it); lines starting with --! are left out.
--! Rendered by generator/src/sql/script.rs (`privileges`).
--!   {{hidden_columns}}  the classed columns the roles may not use, as literals
--!   {{table}}           the table, as a regclass
--!   {{grant}}           the format() string of the GRANT: %1$s columns, %2$s table, %3$s roles
--!   {{roles}}           one literal: the roles' quoted names, comma-separated
DECLARE
    hidden name[] := ARRAY[{{hidden_columns}}];
    cols text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(attname), ', ' ORDER BY attnum) INTO cols
    FROM pg_catalog.pg_attribute
    WHERE attrelid = {{table}} AND attnum > 0 AND NOT attisdropped AND attname <> ALL (hidden);
    IF cols IS NOT NULL THEN
        EXECUTE pg_catalog.format({{grant}}, cols, {{table}}, {{roles}});
    END IF;
END;
