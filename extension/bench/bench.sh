#!/usr/bin/env bash
# rowsec benchmark (not a test): one command, own cluster under /tmp, torn down at the end.
#   extension/bench/bench.sh            # builds and installs the release build first
#   SKIP_INSTALL=1 extension/bench/bench.sh
# Like tests/run.sh it uses the private PostgreSQL copy under target/pg (never the system's),
# unless ROWSEC_PG_BIN names another bin directory (run tests/run.sh once first: it also points
# this checkout's PGRX_HOME, target/pgrx-home, at that copy).
# Reports: warm per-call cost, cache rebuild time after a directory change, and a query over a
# 1,000,000-row table under RLS for personas seeing ~1, ~10, ~1,000 and ~50,000 owners, each next
# to the same query with a hand-written `owner_id = ANY('{...}'::bigint[])` and no RLS.
# Every figure is the median of 5 runs after a warm-up, with max_parallel_workers_per_gather = 0.
set -euo pipefail

# shellcheck source=extension/bench/common.sh
source "$(dirname "$0")/common.sh"

bench_cluster bench -c max_parallel_workers_per_gather=0

echo "== setup: 100,000 people, 1,000,000 rows"
"${PSQL[@]}" >/dev/null <<'SQL'
CREATE EXTENSION rowsec;
CREATE SCHEMA bench;
-- Person 1 manages 2 and 50002. Ids 2..50001 form a complete 8-ary tree under 2 (50,000 people);
-- ids 50002..100000 a complete 10-ary tree under 50002, whose subtrees have ~1, 11, 111, 1111 people.
CREATE TABLE bench.people (id bigint PRIMARY KEY, manager_id bigint, team bigint, login text, active boolean NOT NULL);
INSERT INTO bench.people
SELECT id,
       CASE WHEN id = 1 THEN NULL
            WHEN id IN (2, 50002) THEN 1
            WHEN id <= 50001 THEN 2 + (id - 3) / 8
            ELSE 50002 + (id - 50003) / 10 END,
       id / 10, 'u' || id, true
FROM generate_series(1, 100000) id;
SELECT rowsec.configure('bench.people', 'id', 'manager_id', 'team', 'login', 'active');

CREATE TABLE bench.deals (id bigint PRIMARY KEY, owner_id bigint NOT NULL, amount numeric NOT NULL, pad text);
INSERT INTO bench.deals
SELECT g, 1 + ((g::bigint * 2654435761) % 100000), (g % 1000)::numeric, 'x'
FROM generate_series(1, 1000000) g;
CREATE INDEX ON bench.deals (owner_id);
VACUUM ANALYZE bench.deals;
-- RLS enabled but not forced: the superuser's hand-written query bypasses it on the same table.
ALTER TABLE bench.deals ENABLE ROW LEVEL SECURITY;
CREATE POLICY subtree ON bench.deals FOR SELECT USING (rowsec.in_subtree(owner_id));

CREATE FUNCTION bench.median_ms(q text, n int DEFAULT 5) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz; times float8[] := '{}';
BEGIN
    EXECUTE q;                                   -- warm-up (also warms rowsec's caches)
    FOR i IN 1..n LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        times := times || extract(epoch FROM clock_timestamp() - t0)::float8 * 1000;
    END LOOP;
    RETURN (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x);
END $$;

-- Personas: the person whose subtree size is closest to each target.
CREATE TABLE bench.personas AS
WITH sizes AS (SELECT id, cardinality(rowsec.subtree_of(id)) AS n FROM bench.people)
SELECT t.target, p.id, p.n
FROM unnest(ARRAY[1, 10, 1000, 50000]) t(target)
CROSS JOIN LATERAL (SELECT id, n FROM sizes ORDER BY abs(n - t.target), id DESC LIMIT 1) p;
SQL

"${PSQL[@]}" -At -c "SELECT id FROM bench.personas" | while read -r id; do
    "${PSQL[@]}" -c "CREATE ROLE u$id; GRANT USAGE ON SCHEMA bench TO u$id; GRANT SELECT ON bench.deals TO u$id; GRANT EXECUTE ON FUNCTION bench.median_ms(text, int) TO u$id"
done

echo
echo "== warm call cost (1,000,000 calls, as persona u2)"
"${PSQL[@]}" -c "CREATE ROLE u2; GRANT USAGE ON SCHEMA bench TO u2" 2>/dev/null || true
"${PSQL[@]}" -At -F' ' <<'SQL'
SET ROLE u2;
WITH m AS (
  SELECT bench.median_ms('SELECT count(rowsec.current_person()) FROM generate_series(1, 1000000)') AS f,
         bench.median_ms('SELECT count(1::bigint) FROM generate_series(1, 1000000)') AS base,
         bench.median_ms('SELECT count(*) FROM generate_series(1, 1000000) g WHERE rowsec.in_subtree(g)') AS probe,
         bench.median_ms('SELECT count(*) FROM generate_series(1, 1000000) g WHERE g < 0') AS probe_base)
SELECT format('current_person(): %s ms vs baseline %s ms => %s ns per call', round(f::numeric, 1), round(base::numeric, 1), round(((f - base) * 1e6 / 1e6)::numeric, 1)),
       E'\n' || format('in_subtree(g):    %s ms vs baseline %s ms => %s ns per call', round(probe::numeric, 1), round(probe_base::numeric, 1), round(((probe - probe_base) * 1e6 / 1e6)::numeric, 1))
FROM m;
SQL

echo
echo "== cache rebuild after a directory change (100,000 people)"
"${PSQL[@]}" -At <<'SQL'
CREATE TEMP TABLE rebuild (load_ms float8, stmt_ms float8);
DO $$
DECLARE t0 timestamptz;
BEGIN
  FOR i IN 1..6 LOOP
    PERFORM rowsec.subtree_of(1);
    UPDATE bench.people SET team = team WHERE id = 1;       -- statement trigger => invalidation
    t0 := clock_timestamp();
    PERFORM rowsec.subtree_of(1);                            -- reload + subtree of everyone
    INSERT INTO rebuild SELECT load_ms, extract(epoch FROM clock_timestamp() - t0) * 1000 FROM rowsec.directory_status();
  END LOOP;
END $$;
SELECT format('rebuild: load %s ms (median of %s), first call after the change incl. 100k-person subtree %s ms',
              round(percentile_disc(0.5) WITHIN GROUP (ORDER BY load_ms)::numeric, 1), count(*),
              round(percentile_disc(0.5) WITHIN GROUP (ORDER BY stmt_ms)::numeric, 1))
FROM rebuild;
SQL

echo
echo "== SELECT count(*), sum(amount) FROM bench.deals: RLS (rowsec.in_subtree) vs hand-written ANY(const array), no RLS"
printf '%-8s %-8s %-8s %-12s %-12s %-6s %s\n' persona owners rows rls_ms hand_ms ratio plan
"${PSQL[@]}" -At -F' ' -c "SELECT target, id, n FROM bench.personas ORDER BY target" | while read -r target id n; do
    arr=$("${PSQL[@]}" -At -c "SELECT rowsec.subtree_of($id)::text")
    printf '%s' "SELECT count(*), sum(amount) FROM bench.deals WHERE owner_id = ANY('$arr'::bigint[])" >"$WORK/hand.sql"
    rls=$("${PSQL[@]}" -At -c "SET ROLE u$id" -c "SELECT bench.median_ms('SELECT count(*), sum(amount) FROM bench.deals')")
    rows=$("${PSQL[@]}" -At -c "SET ROLE u$id" -c "SELECT count(*) FROM bench.deals")
    plan=$("${PSQL[@]}" -At -c "SET ROLE u$id" -c "EXPLAIN (COSTS OFF) SELECT count(*), sum(amount) FROM bench.deals" | grep -oE "(Seq Scan|Bitmap Heap Scan|Index Scan|Index Only Scan)" | head -1)
    hplan=$({ printf 'EXPLAIN (COSTS OFF) '; cat "$WORK/hand.sql"; echo ';'; } | "${PSQL[@]}" -At | grep -oE "(Seq Scan|Bitmap Heap Scan|Index Scan|Index Only Scan)" | head -1)
    # The array can exceed the 128 kB limit of one command-line argument: pass it through a file.
    hand=$("${PSQL[@]}" -At <<SQL
\\set q \`cat $WORK/hand.sql\`
SELECT bench.median_ms(:'q');
SQL
)
    ratio=$(awk -v a="$rls" -v b="$hand" 'BEGIN { printf "%.2f", a / b }')
    printf '%-8s %-8s %-8s %-12.2f %-12.2f %-6s %s / %s\n' "$target" "$n" "$rows" "$rls" "$hand" "$ratio" "$plan" "$hplan"
done
