--! Masked views (spec: classes): what the two steps before created and changed, as a notice.
--! Rendered by generator/src/sql/masking.rs; lines starting with --! are left out.
--!   {{views}}  ARRAY[...]::text[] of this spec's masked views, as schema.view text
DO $rowsec$
DECLARE
    created text[];
    changed text[];
BEGIN
    SELECT pg_catalog.array_agg(v ORDER BY v) FILTER (WHERE b.view IS NULL),
           pg_catalog.array_agg(v ORDER BY v) FILTER (WHERE b.view IS NOT NULL AND b.state IS DISTINCT FROM
               pg_catalog.concat_ws(' ', pg_catalog.pg_get_viewdef(v::regclass), c.relacl::text, c.reloptions::text))
    INTO created, changed
    FROM pg_catalog.unnest({{views}}) v
    JOIN pg_catalog.pg_class c ON c.oid = v::regclass
    LEFT JOIN pg_temp.rowsec_masked_before b ON b.view = v;
    RAISE NOTICE 'rowsec: masked views: % (% created, % changed)', pg_catalog.array_to_string({{views}}, ', '),
        coalesce(pg_catalog.cardinality(created), 0), coalesce(pg_catalog.cardinality(changed), 0);
END
$rowsec$;
