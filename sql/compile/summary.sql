--! What the script changed: the state after (state.sql's view) compared with the state before.
--! The difference is also left in pg_temp.rowsec_changes until the transaction ends, for
--! `rowsec plan` and `rowsec apply`, which run the script in their own transaction.
--! Rendered by generator/src/sql/script.rs (`summary`); lines starting with --! are left out.
--!   {{spec_sha256}}     the spec's SHA-256, as a literal
--!   {{record_apply}}    the extension function that writes the script's `apply` audit row
--!   {{rowsec_version}}  the version of rowsec that compiled the script, as a literal
--!   {{spec_counts}}     what the spec holds, as a JSON literal (audit.rs)
--!   {{protected_tables}}  the extension's registry of protected tables (extension_api.rs)
--!   {{owned_comment}}     LIKE pattern of the comments that mark roles and policies as rowsec's (names.rs)
--!   {{policy_names}}      LIKE pattern of rowsec's policy names (names.rs)
-- Summary: what this script created, changed and removed, compared with the state before it;
-- the same counts go into the audit trail's `apply` row, in this transaction.
DO $rowsec$
DECLARE
    r record;
    words text[];
    parts text[] := '{}';
    totals text[] := '{}';
    summary jsonb := '{}';
BEGIN
    -- The state after, read once: roles, memberships and schema privileges, and the part of each
    -- table the script changed (state.sql: the other tables are as they were).
    CREATE TEMP TABLE rowsec_after ON COMMIT DROP AS SELECT s.*, true AS whole FROM pg_temp.rowsec_state s;
    INSERT INTO pg_temp.rowsec_after
    SELECT s.*, false FROM pg_temp.rowsec_touched t CROSS JOIN LATERAL pg_temp.rowsec_table_snapshot(t.tbl::regclass) s;
    CREATE TEMP TABLE rowsec_changes ON COMMIT DROP AS
    SELECT coalesce(a.kind, b.kind) AS kind, coalesce(a.object, b.object) AS object,
           CASE WHEN b.object IS NULL THEN 'created' WHEN a.object IS NULL THEN 'removed' ELSE 'changed' END AS change,
           b.state AS before, a.state AS after
    FROM pg_temp.rowsec_after a FULL JOIN pg_temp.rowsec_before b ON a.kind = b.kind AND a.object = b.object
    WHERE a.object IS NULL OR b.object IS NULL OR a.state IS DISTINCT FROM b.state;
    FOR r IN
        -- From the difference computed once above, and the state after.
        WITH changes AS (
            SELECT c.kind,
                   pg_catalog.count(*) FILTER (WHERE c.change = 'created') AS created,
                   pg_catalog.count(*) FILTER (WHERE c.change = 'changed') AS changed,
                   pg_catalog.count(*) FILTER (WHERE c.change = 'removed') AS removed
            FROM pg_temp.rowsec_changes c GROUP BY c.kind
        ), managed_roles AS MATERIALIZED (
            SELECT oid FROM pg_temp.rowsec_managed_roles
        ), totals AS (
            -- Counted, not listed: the tables of a large spec hold 100,000s of column privileges.
            SELECT a.kind, pg_catalog.count(*) AS now FROM pg_temp.rowsec_after a WHERE a.whole GROUP BY a.kind
            UNION ALL
            SELECT 'table', pg_catalog.count(*) FROM {{protected_tables}} p JOIN pg_catalog.pg_class c ON c.oid = p.tbl
            UNION ALL
            SELECT 'policy', pg_catalog.count(*) FROM pg_catalog.pg_policy p
            WHERE p.polname LIKE {{policy_names}} AND pg_catalog.obj_description(p.oid, 'pg_policy') LIKE {{owned_comment}}
            UNION ALL
            SELECT 'privilege', pg_catalog.count(*) FROM pg_catalog.pg_class c
            CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) x JOIN managed_roles o ON o.oid = x.grantee
            WHERE c.oid IN (SELECT tbl FROM {{protected_tables}})
               OR c.relkind = 'S' AND c.oid IN (SELECT d.objid FROM pg_catalog.pg_depend d
                        WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.classid = 'pg_catalog.pg_class'::regclass
                          AND d.deptype = 'a' AND d.refobjid IN (SELECT tbl FROM {{protected_tables}}))
            UNION ALL
            SELECT 'privilege', pg_catalog.count(*) FROM pg_catalog.pg_attribute a
            CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) x JOIN managed_roles o ON o.oid = x.grantee
            WHERE a.attrelid IN (SELECT tbl FROM {{protected_tables}}) AND a.attacl IS NOT NULL
        ), kind_totals AS (
            SELECT t.kind, pg_catalog.sum(t.now) AS now FROM totals t GROUP BY t.kind
        )
        SELECT k.kind, k.ord, coalesce(c.created, 0) AS created, coalesce(c.changed, 0) AS changed,
               coalesce(c.removed, 0) AS removed, coalesce(t.now, 0) AS now
        FROM unnest(ARRAY['role', 'membership', 'table', 'policy', 'privilege']) WITH ORDINALITY AS k(kind, ord)
        LEFT JOIN changes c ON c.kind = k.kind LEFT JOIN kind_totals t ON t.kind = k.kind
        ORDER BY k.ord
    LOOP
        -- created, changed, removed in the words of each kind
        words := CASE r.kind
            WHEN 'role' THEN ARRAY['roles', 'created', 'changed', 'removed']
            WHEN 'membership' THEN ARRAY['memberships', 'added', 'changed', 'ended']
            WHEN 'table' THEN ARRAY['tables', 'protected', 'changed', 'released']
            WHEN 'policy' THEN ARRAY['policies', 'created', 'changed', 'removed']
            ELSE ARRAY['privileges', 'granted', 'changed', 'revoked'] END;
        IF r.created + r.changed + r.removed > 0 THEN
            parts := parts || (words[1] || ': ' || pg_catalog.array_to_string(ARRAY[
                CASE WHEN r.created > 0 THEN r.created || ' ' || words[2] END,
                CASE WHEN r.changed > 0 THEN r.changed || ' ' || words[3] END,
                CASE WHEN r.removed > 0 THEN r.removed || ' ' || words[4] END], ', '));
        END IF;
        totals := totals || (words[1] || ' ' || r.now);
        summary := summary || pg_catalog.jsonb_build_object(r.kind,
            pg_catalog.jsonb_build_object('created', r.created, 'changed', r.changed, 'removed', r.removed));
    END LOOP;
    FOR r IN
        SELECT b.object FROM pg_temp.rowsec_before b
        WHERE b.kind = 'membership' AND NOT EXISTS (SELECT FROM pg_temp.rowsec_after a WHERE a.kind = b.kind AND a.object = b.object)
        ORDER BY b.object
    LOOP
        RAISE NOTICE 'rowsec: membership ended: %', r.object;
    END LOOP;
    IF pg_catalog.cardinality(parts) = 0 THEN
        RAISE NOTICE 'rowsec: spec % applied: nothing changed (%)', pg_catalog.left({{spec_sha256}}, 12),
            pg_catalog.array_to_string(totals, ', ');
    ELSE
        RAISE NOTICE 'rowsec: spec % applied: %', pg_catalog.left({{spec_sha256}}, 12), pg_catalog.array_to_string(parts, '; ')
            USING DETAIL = 'now: ' || pg_catalog.array_to_string(totals, ', ');
    END IF;
    PERFORM {{record_apply}}(spec_sha256 => {{spec_sha256}}, rowsec_version => {{rowsec_version}},
                             changes => summary || pg_catalog.jsonb_build_object('spec', {{spec_counts}}::jsonb));
    -- Named by the session's own temporary schema rather than the pg_temp alias: Citus, where
    -- the script runs on a coordinator, looks the schema of a dropped view up by name.
    EXECUTE pg_catalog.format('DROP VIEW %I.rowsec_state', pg_catalog.pg_my_temp_schema()::pg_catalog.regnamespace::text);
    EXECUTE pg_catalog.format('DROP VIEW %I.rowsec_managed_roles', pg_catalog.pg_my_temp_schema()::pg_catalog.regnamespace::text);
END
$rowsec$;
